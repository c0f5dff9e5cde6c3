"""Proxy-reward diagnostics (project issue #9, item 4): `proxy_reward` on both backends is the
reward the losses use, the tester logs ProxyCorr / DecompError as a numpy computation from it and
the env's dense rewards on the recorded test episodes, and tools/proxy_trace.py repeats a run's
test episode from its checkpoint."""
import argparse
import csv
import glob
import importlib.util
import os

import numpy as np
import pytest

import learner.diagnostics
import train
from algorithm import create_agent
from arguments import get_args
from envs import make_env
from learner.diagnostics import pearson
from tools import proxy_trace
from utils.os_utils import Logger

F32 = np.float32
BACKENDS = ['torch', pytest.param('tf', marks=pytest.mark.skipif(
    importlib.util.find_spec('tensorflow') is None, reason='TensorFlow is not installed'))]
# name -> (argv, obs_dims, acts_dims)
CONFIGS = {
    'continuous': (['--env', 'Swimmer-v2', '--basis_alg', 'sac', '--obs_normalization', 'True'], [5], [2]),
    'discrete': (['--env', 'CartPole-v1', '--basis_alg', 'dqn'], [4], [3]),
    'image': (['--env', 'Pong', '--basis_alg', 'dqn'], [84, 84, 4], [6]),
}


@pytest.fixture(autouse=True)
def no_env_backend(monkeypatch):
    monkeypatch.delenv('USE_PYTORCH', raising=False)


def backend_flags(backend):
    return ['--use_pytorch', 'True', '--cuda', 'False'] if backend == 'torch' else ['--use_pytorch', 'False']


def make_agent(name, backend):
    argv, obs_dims, acts_dims = CONFIGS[name]
    args = get_args(argv + ['--alg', 'rrd', *backend_flags(backend)])
    args.obs_dims, args.acts_dims = obs_dims, acts_dims
    return create_agent(args)


def transitions(args, rng, *lead):
    """obs, acts, obs_next shaped and typed as the buffer samples them."""
    def obs():
        if len(args.obs_dims) == 3:
            return rng.randint(0, 256, size=[*lead, *args.obs_dims]).astype(np.uint8)
        return (rng.normal(size=[*lead, *args.obs_dims]) * 2 + 1).astype(F32)
    acts = rng.randint(0, args.acts_dims[0], size=lead) if args.discrete \
        else rng.uniform(-1, 1, size=[*lead, *args.acts_dims]).astype(F32)
    return obs(), acts, obs()


def reward_loss(agent, batch, backend):
    """The agent's own R_loss and critic-input rewards on `batch`, without an update."""
    if backend == 'tf':
        return agent.sess.run(agent.train_info_ops['R_loss'], agent.feed_dict(batch)), None
    tensors = agent.to_tensors(batch)
    _, info = agent.reward_losses(tensors)
    return info['R_loss'].item(), agent.proxy_rewards(tensors)[:, 0].numpy()


@pytest.mark.parametrize('backend', BACKENDS)
@pytest.mark.parametrize('name', list(CONFIGS))
def test_proxy_reward_is_the_reward_of_the_losses(name, backend):
    agent = make_agent(name, backend)
    rng = np.random.RandomState(0)
    episodes, samples = 3, 4
    obs, acts, obs_next = transitions(agent.args, rng, 5)
    rrd_obs, rrd_acts, rrd_obs_next = transitions(agent.args, rng, episodes, samples)
    if agent.normalizer is not None:  # a non-trivial normaliser, which both paths must apply
        agent.normalizer_update({'obs': obs * 3 - 2, 'obs_next': obs_next})
    batch = {'obs': obs, 'acts': acts, 'obs_next': obs_next, 'rrd_obs': rrd_obs, 'rrd_acts': rrd_acts,
             'rrd_obs_next': rrd_obs_next, 'rrd_rews': rng.normal(size=(episodes, 1)).astype(F32)}

    proxy = agent.proxy_reward(obs, acts, obs_next)
    assert proxy.shape == (5,) and proxy.dtype == np.float32 and np.ptp(proxy) > 0
    rrd_proxy = agent.proxy_reward(*(x.reshape(episodes * samples, *x.shape[2:])
                                     for x in (rrd_obs, rrd_acts, rrd_obs_next))).reshape(episodes, samples)
    expected_loss = np.mean((rrd_proxy.astype(np.float64).mean(axis=1) - batch['rrd_rews'][:, 0]) ** 2)
    loss, critic_rews = reward_loss(agent, batch, backend)
    assert loss == pytest.approx(expected_loss, rel=1e-5, abs=1e-7)
    if critic_rews is not None:
        np.testing.assert_array_equal(critic_rews, proxy)


class RecordingEnv:
    """The test env, keeping every transition and dense reward the tester sees."""

    def __init__(self, env):
        self.env, self.episodes = env, []

    def reset(self, seed=None):
        self.obs = self.env.reset(seed=seed)
        self.episodes.append(([], [], [], []))
        return self.obs

    def step(self, action):
        obs_next, reward, terminated, truncated, info = self.env.step(action)
        for column, value in zip(self.episodes[-1], (self.obs, action, obs_next, info['dense_reward'])):
            column.append(value)
        self.obs = obs_next
        return obs_next, reward, terminated, truncated, info

    @property
    def env_info(self):
        return self.env.env_info


def expected_measures(agent, episodes):
    proxies, trues, errors = [], [], []
    for obs, acts, obs_next, dense in episodes:
        proxy = agent.proxy_reward(np.asarray(obs), np.asarray(acts), np.asarray(obs_next)).astype(np.float64)
        proxies.append(proxy)
        trues.append(np.asarray(dense))
        errors.append(abs(proxy.sum() - np.sum(dense)) / len(dense))
    corr = np.corrcoef(np.concatenate(proxies), np.concatenate(trues))[0, 1]
    return corr, np.mean(errors)


def run_test_cycles(tmp_path, backend, env, cycles=2, flags=(), recording=RecordingEnv):
    args = get_args(['--env', env, '--alg', 'rrd', *backend_flags(backend), '--test_rollouts', '2',
                     '--test_timesteps', '30', '--obs_normalization', 'True', *flags])
    test_env = make_env(args)
    args.obs_dims, args.acts_dims, args.discrete = test_env.obs_dims, test_env.acts_dims, test_env.discrete
    agent = create_agent(args)
    if agent.normalizer is not None:
        agent.normalizer_update({'obs': np.random.RandomState(1).normal(size=(8, *args.obs_dims)) * 2,
                                 'obs_next': np.zeros((1, *args.obs_dims))})
    recorder = recording(test_env)
    results = []
    with Logger(args, logdir=str(tmp_path), echo=False, tensorboard=False) as logger:
        tester = learner.Tester(args, recorder, agent, logger)
        for cycle in range(cycles):
            recorder.episodes = []
            tester.cycle_summary(env_steps=cycle)
            results.append((logger.tabular(cycle), recorder.episodes))
    return agent, results


@pytest.mark.parametrize('backend', BACKENDS)
def test_logged_measures_match_numpy_on_recorded_episodes(tmp_path, backend, monkeypatch):
    monkeypatch.setattr(learner.diagnostics, 'CHUNK', 7)  # episodes of 30 steps span several chunks
    agent, results = run_test_cycles(tmp_path, backend, 'Pendulum-v1')
    for row, episodes in results:  # each cycle's values come from its own episodes only
        assert len(episodes) == 2 and all(len(episode[3]) == 30 for episode in episodes)
        corr, error = expected_measures(agent, episodes)
        assert row['charts/ProxyCorr'] == pytest.approx(corr, abs=1e-6)
        assert row['charts/DecompError'] == pytest.approx(error, rel=1e-6)
    assert results[0][0]['charts/ProxyCorr'] != results[1][0]['charts/ProxyCorr']


class HalvingEnv(RecordingEnv):
    """Stores half the env's reward (as Atari stores its clipped reward with --env_type normal)
    and records the stored one: what the reward net's episode sums are made of."""

    def step(self, action):
        obs_next, reward, terminated, truncated, info = self.env.step(action)
        for column, value in zip(self.episodes[-1], (self.obs, action, obs_next, reward / 2)):
            column.append(value)
        self.obs = obs_next
        return obs_next, reward / 2, terminated, truncated, info


def test_dense_rewards_are_measured_as_stored(tmp_path):
    agent, results = run_test_cycles(tmp_path, 'torch', 'Pendulum-v1', cycles=1, flags=('--env_type', 'normal'),
                                     recording=HalvingEnv)
    (row, episodes), = results
    assert row['charts/DecompError'] == pytest.approx(expected_measures(agent, episodes)[1], rel=1e-6)


def test_constant_true_reward_gives_nan_correlation(tmp_path):
    """CartPole pays 1 per step: the correlation is undefined, the decomposition error is not."""
    agent, results = run_test_cycles(tmp_path, 'torch', 'CartPole-v1', cycles=1)
    (row, episodes), = results
    assert np.isnan(row['charts/ProxyCorr'])
    with np.errstate(invalid='ignore', divide='ignore'):  # numpy's corrcoef warns on constant input
        expected_error = expected_measures(agent, episodes)[1]
    assert row['charts/DecompError'] == pytest.approx(expected_error, rel=1e-6)


def test_pearson():
    rng = np.random.RandomState(0)
    x, y = rng.normal(size=50), rng.normal(size=50)
    assert pearson(x, 2 * x + y) == pytest.approx(np.corrcoef(x, 2 * x + y)[0, 1])
    with np.errstate(all='raise'):  # no warnings on the degenerate cases
        assert np.isnan(pearson(x, np.full(50, 3.0)))
        assert np.isnan(pearson([1.0], [2.0]))


def proxy_trace_main(*argv):
    parser = argparse.ArgumentParser()
    proxy_trace.add_arguments(parser)
    return proxy_trace.main(parser.parse_args(argv))


@pytest.mark.parametrize('backend', BACKENDS)
def test_proxy_trace_repeats_the_runs_test_episode(tmp_path, backend, monkeypatch, capsys):
    """One cycle with one test episode, saved after it: the tool's episode is the run's."""
    monkeypatch.chdir(tmp_path)
    flags = ['--env=Pendulum-v1', '--alg=rrd', '--test_timesteps=25']
    train.main([*flags, *backend_flags(backend), '--epochs=1', '--cycles=1', '--iterations=2', '--timesteps=25',
                '--warmup=50', '--batch_size=16', '--test_rollouts=1', '--buffer_size=500', '--train_batches=2',
                '--rrd_batch_size=16', '--rrd_sample_size=4', '--save_model=True', '--logdir=log'])
    with open(glob.glob('log/csv/*.csv')[0], newline='') as f:
        (row,) = csv.DictReader(f)
    (run,) = os.listdir('log/models')

    corr, error = proxy_trace_main('--run', run, '--out', 'trace')  # flags from config.json
    assert corr == pytest.approx(float(row['charts/ProxyCorr']), abs=1e-6)
    assert error == pytest.approx(float(row['charts/DecompError']), rel=1e-6)
    assert os.path.getsize('trace.png') > 0
    printed = capsys.readouterr().out
    assert f'ProxyCorr (Pearson r, proxy vs true per-step reward): {corr:.4f}' in printed

    (checkpoint,) = glob.glob(f'log/models/{run}/epoch0*')  # train.py flags given after `--`
    assert proxy_trace_main('--checkpoint', checkpoint, '--out', 'trace.svg', '--', *flags) == (corr, error)
    assert os.path.getsize('trace.svg') > 0


def test_proxy_trace_misuse_is_one_message(tmp_path):
    with pytest.raises(ValueError, match='give --run RUN or --checkpoint PATH'):
        proxy_trace_main()
    with pytest.raises(ValueError, match=r'no config.json found .*give the run\'s train.py flags after `--`'):
        (tmp_path / 'model.pt').write_bytes(b'')
        proxy_trace_main('--checkpoint', str(tmp_path / 'model.pt'))
    with pytest.raises(ValueError, match='proxy rewards need an RRD agent'):
        proxy_trace_main('--checkpoint', str(tmp_path / 'model.pt'), '--', '--env=Pendulum-v1', '--alg=sac')
