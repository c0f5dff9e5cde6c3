"""TensorFlow reference agents against docs/algorithms.md sections 4-7 (project issue #3).

Losses are recomputed in numpy (float64) from the formulas of docs/algorithms.md with the weights read out of the
session; the simultaneous-step semantics are checked by comparing one `train` call with
`train_pi` and `train_q` run separately from the same state. Where torch is installed, the
variable names are checked against the torch agents' parameter paths and both backends are run
from the same weights on the same batches.
"""
import json
import math
import os

import numpy as np
import pytest

pytest.importorskip('tensorflow')

from algorithm import create_agent  # noqa: E402
from algorithm.basis_alg.base import CHECKPOINT_PREFIX, META_FILE  # noqa: E402
from algorithm.checkpoint import CheckpointError  # noqa: E402
from arguments import get_args  # noqa: E402
from utils.tf_utils import Normalizer, RandomNormal, get_vars, tf, v1  # noqa: E402

F32 = np.float32

# name -> (argv, obs_dims, acts_dims); small vector obs, the fixed architectures of docs/algorithms.md
CONFIGS = {
    'ddpg': (['--env', 'Swimmer-v2', '--alg', 'ddpg'], [5], [2]),
    'td3': (['--env', 'Swimmer-v2', '--alg', 'td3'], [5], [2]),
    'sac': (['--env', 'Swimmer-v2', '--alg', 'sac'], [5], [2]),
    'dqn': (['--env', 'CartPole-v1', '--alg', 'dqn'], [4], [3]),
    'rrd-sac': (['--env', 'Swimmer-v2', '--alg', 'rrd', '--basis_alg', 'sac', '--rrd_bias_correction', 'True'],
                [5], [2]),
    'rrd-td3': (['--env', 'Swimmer-v2', '--alg', 'rrd', '--basis_alg', 'td3'], [5], [2]),
    'rrd-ddpg': (['--env', 'Swimmer-v2', '--alg', 'rrd', '--basis_alg', 'ddpg'], [5], [2]),
    'rrd-dqn': (['--env', 'CartPole-v1', '--alg', 'rrd', '--basis_alg', 'dqn', '--rrd_bias_correction', 'True'],
                [4], [3]),
    'dqn-image': (['--env', 'Pong', '--alg', 'dqn', '--dueling', 'True'], [84, 84, 4], [6]),
    'rrd-dqn-image': (['--env', 'Pong', '--alg', 'rrd'], [84, 84, 4], [6]),
}


@pytest.fixture(autouse=True)
def no_env_backend(monkeypatch):
    monkeypatch.delenv('USE_PYTORCH', raising=False)


def make_args(name, *flags, use_pytorch=False, **overrides):
    argv, obs_dims, acts_dims = CONFIGS[name]
    args = get_args(argv + ['--use_pytorch', str(use_pytorch), *flags])
    args.obs_dims, args.acts_dims = list(obs_dims), list(acts_dims)
    for key, value in overrides.items():
        setattr(args, key, value)
    return args


def make_agent(name, *flags, **overrides):
    return create_agent(make_args(name, *flags, **overrides))


def make_batch(args, seed=0, b=6, episodes=2, k=3):
    """A batch for `args`' agent, with every noise key fed and, for RRD, a reward-regression batch."""
    rng = np.random.RandomState(seed)
    obs_dims, act_dim = list(args.obs_dims), args.acts_dims[0]

    def obs(*lead):
        if len(obs_dims) == 3:
            return rng.randint(0, 256, size=list(lead) + obs_dims).astype(np.uint8)
        return (rng.normal(size=list(lead) + obs_dims) * 2 + 1).astype(F32)

    def acts(*lead):
        if args.discrete:
            return rng.randint(0, act_dim, size=lead).astype(np.int64)
        return rng.uniform(-1, 1, size=list(lead) + [act_dim]).astype(F32)

    done = (rng.uniform(size=(b, 1)) < 0.3).astype(F32)
    done[0], done[1] = 1.0, 0.0
    batch = {'obs': obs(b), 'obs_next': obs(b), 'acts': acts(b), 'rews': (rng.normal(size=(b, 1)) * 3).astype(F32),
             'done': done,
             # bounded noise keeps tanh away from saturation, where float32 and float64 disagree
             'pi_noise': rng.uniform(-0.3, 0.3, size=(b, act_dim)).astype(F32),
             'pi_next_noise': rng.uniform(-0.3, 0.3, size=(b, act_dim)).astype(F32),
             'target_noise': (rng.normal(size=(b, act_dim)) * 2).astype(F32)}
    if args.alg == 'rrd':
        batch.update({'rrd_obs': obs(episodes, k), 'rrd_obs_next': obs(episodes, k), 'rrd_acts': acts(episodes, k),
                      'rrd_rews': rng.normal(size=(episodes, 1)).astype(F32),
                      'rrd_var_coef': np.array([[1 - k / 10], [1.0]], F32)})
    return batch


def weights(agent):
    """Every global variable of the agent's graph (networks, targets, optimiser state), by name."""
    variables = agent.graph.get_collection(v1.GraphKeys.GLOBAL_VARIABLES)
    return dict(zip([var.op.name for var in variables], agent.sess.run(variables)))


def assert_same(a, b, keys=None):
    keys = sorted(a) if keys is None else keys
    for key in keys:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


# ---- numpy forward passes (float64) -------------------------------------------------------------
def mlp_np(w, scope, x, layers=3):
    x = np.asarray(x, np.float64)
    for index in range(layers):
        x = x @ w[f'{scope}/{2 * index}/kernel'].astype(np.float64) + w[f'{scope}/{2 * index}/bias']
        if index < layers - 1:
            x = np.maximum(x, 0.0)
    return x


def normalize_np(obs, data):
    mean = data.mean(axis=0)
    std = np.maximum(np.sqrt(np.maximum((data ** 2).mean(axis=0) - mean ** 2, 0.0)), 1e-2)
    return np.clip((obs - mean) / std, -5.0, 5.0)


def sac_pi_np(w, obs, noise):
    mean, log_std = np.split(mlp_np(w, 'pi/net', obs), 2, axis=-1)
    log_std = np.clip(log_std, -20.0, 2.0)
    std = np.maximum(np.exp(log_std), 1e-2)
    u = mean + std * noise
    action = np.tanh(u)
    log_p = np.sum(-0.5 * np.log(2 * np.pi) - log_std - 0.5 * ((u - mean) / std) ** 2, axis=-1, keepdims=True) \
        - np.sum(np.log(1 - action ** 2 + 1e-6), axis=-1, keepdims=True)
    return action, log_p, mean, std


def q_np(w, scope, obs, acts):
    return mlp_np(w, scope + '/net', np.concatenate([obs, acts], axis=-1))


def ddpg_q_np(w, scope, obs, acts):
    h = np.maximum(obs @ w[scope + '/obs_layer/kernel'] + w[scope + '/obs_layer/bias'], 0.0)
    return mlp_np(w, scope + '/net', np.concatenate([h, acts], axis=-1), layers=2)


def dqn_q_np(w, scope, obs, dueling):
    features = np.maximum(obs @ w[scope + '/torso/0/kernel'] + w[scope + '/torso/0/bias'], 0.0)
    advantage = mlp_np(w, scope + '/advantage', features, layers=2)
    if not dueling:
        return advantage
    return mlp_np(w, scope + '/value', features, layers=2) + advantage - advantage.mean(axis=-1, keepdims=True)


def reward_np(w, obs, acts, obs_next, discrete):
    if discrete:
        out = mlp_np(w, 'reward_net/net', np.concatenate([obs, obs - obs_next], axis=-1))
        return np.take_along_axis(out, acts[..., None], axis=-1)
    return mlp_np(w, 'reward_net/net', np.concatenate([obs, acts, obs - obs_next], axis=-1))


def rrd_losses_np(w, batch, discrete, preprocess=lambda x: x):
    e, k = batch['rrd_obs'].shape[:2]
    flat = {key: batch[key].reshape((e * k,) + batch[key].shape[2:]) for key in ('rrd_obs', 'rrd_acts', 'rrd_obs_next')}
    r = reward_np(w, preprocess(flat['rrd_obs']), flat['rrd_acts'], preprocess(flat['rrd_obs_next']), discrete)
    r = r.reshape(e, k)
    r_mean = r.mean(axis=1, keepdims=True)
    r_loss = np.mean((r_mean - batch['rrd_rews']) ** 2)
    r_var = ((r - r_mean) ** 2).sum(axis=1, keepdims=True) / (k - 1)
    return r_loss, r_var.mean()


def mse(a, b):
    return np.mean((a - b) ** 2)


def huber_np(a, b):
    error = np.abs(a - b)
    return np.mean(np.where(error < 1.0, 0.5 * error ** 2, error - 0.5))


def trained_agent(name, *flags, **overrides):
    """An agent after one update, so biases are non-zero and online and target nets differ."""
    agent = make_agent(name, *flags, **overrides)
    agent.normalizer_update(make_batch(agent.args, seed=1))
    agent.train(make_batch(agent.args, seed=1))
    return agent


def check_info(info, expected):
    assert set(info) == set(expected)
    for key, value in expected.items():
        assert isinstance(info[key], np.float32), key
        np.testing.assert_allclose(info[key], value, rtol=2e-4, atol=1e-5, err_msg=key)


# ---- graph construction and interface -----------------------------------------------------------
TORCH_KEYS = {  # train_info / step_info of the torch agents (sac_torch.py etc.)
    'ddpg': (('Pi_loss', 'Q_loss', 'Q_reg_loss'), ('Q_average',)),
    'td3': (('Pi_loss', 'Q_loss'), ('Q_average',)),
    'sac': (('Pi_loss', 'Q_loss', 'Alpha'), ('Q_average', 'Pi_step_std')),
    'dqn': (('Q_loss',), ('Q_average',)),
}


@pytest.mark.parametrize('name', list(CONFIGS))
def test_build_step_and_train(name):
    agent = make_agent(name)
    args, batch = agent.args, make_batch(agent.args)
    basis = args.basis_alg if args.alg == 'rrd' else args.alg
    rrd_keys = (('R_loss', 'R_var') if args.rrd_bias_correction else ('R_loss',)) if args.alg == 'rrd' else ()
    assert agent.train_info == TORCH_KEYS[basis][0] + rrd_keys
    assert agent.step_info == TORCH_KEYS[basis][1]
    action, info = agent.step(batch['obs'][0], explore=True, test_info=True)
    assert set(info) == set(agent.step_info)
    if args.discrete:
        assert isinstance(action, int) and 0 <= action < args.acts_dims[0]
        assert info['Q_average'].shape == ()
    else:
        assert action.shape == tuple(args.acts_dims) and action.dtype == F32 and np.all(np.abs(action) <= 1)
        assert info['Q_average'].shape == (1,)
        if basis == 'sac':
            assert info['Pi_step_std'].shape == tuple(args.acts_dims)
    assert agent.step(batch['obs'][0]) == pytest.approx(agent.step(batch['obs'][0]))
    train_info = agent.train(batch)
    assert set(train_info) == set(agent.train_info)
    assert all(isinstance(value, np.float32) and np.isfinite(value) for value in train_info.values())
    assert set(agent.train_q(batch)) | set(agent.train_pi(batch)) == set(agent.train_info)
    agent.target_update()
    if basis == 'dqn':  # no policy: train_pi is an empty op, as the torch twin's
        before = weights(agent)
        assert agent.train_pi(batch) == {}
        assert_same(weights(agent), before)


def test_agents_do_not_share_graphs():
    first, second = make_agent('sac'), make_agent('sac', seed=1)
    assert first.graph is not second.graph and first.sess is not second.sess
    before = weights(second)
    first.train(make_batch(first.args))
    assert_same(before, weights(second))
    assert not np.array_equal(weights(first)['pi/net/0/kernel'], before['pi/net/0/kernel'])


def test_seed_fixes_the_initial_weights():
    assert_same(weights(make_agent('td3')), weights(make_agent('td3')))
    assert not np.array_equal(weights(make_agent('td3'))['pi/net/0/kernel'],
                              weights(make_agent('td3', seed=3))['pi/net/0/kernel'])


def test_targets_start_as_copies_and_glorot_init():
    agent = make_agent('td3')
    with agent.graph.as_default():
        assert [var.op.name for var in get_vars('q1')] == [f'q1/net/{i}/{kind}' for i in (0, 2, 4)
                                                           for kind in ('kernel', 'bias')]
    w = weights(agent)
    for name in ('pi', 'q1', 'q2'):
        for layer in ('0', '2', '4'):
            np.testing.assert_array_equal(w[f'{name}_target/net/{layer}/kernel'], w[f'{name}/net/{layer}/kernel'])
            assert not w[f'{name}/net/{layer}/bias'].any()
    kernel = w['q1/net/0/kernel']  # [7, 256]: Glorot-uniform limit sqrt(6 / (in + out))
    assert kernel.shape == (7, 256) and np.abs(kernel).max() <= math.sqrt(6 / (7 + 256))
    assert np.abs(kernel).max() > 0.8 * math.sqrt(6 / (7 + 256))


def test_sac_deterministic_action_and_noise():
    agent = make_agent('sac')
    w, obs, noise = weights(agent), make_batch(agent.args)['obs'][:1], np.array([0.2, -0.1], F32)
    action, _, mean, std = sac_pi_np(w, obs, noise[None])
    np.testing.assert_allclose(agent.step(obs[0]), np.tanh(mean[0]), rtol=1e-5, atol=1e-6)
    explored, info = agent.step(obs[0], explore=True, test_info=True, noise=noise)
    np.testing.assert_allclose(explored, action[0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(info['Pi_step_std'], std[0], rtol=1e-5)
    assert not np.allclose(agent.step(obs[0], explore=True), agent.step(obs[0], explore=True))


def test_ddpg_exploration_noise():
    agent = make_agent('ddpg')
    obs = make_batch(agent.args)['obs'][0]
    np.testing.assert_allclose(agent.step(obs, explore=True, noise=np.array([0.5, -30.0], F32)),
                               [np.clip(agent.step(obs)[0] + 0.05, -1, 1), -1.0], rtol=1e-6)


def test_dqn_epsilon_greedy():
    agent = make_agent('dqn')
    obs = make_batch(agent.args)['obs'][0]
    greedy = agent.step(obs)
    agent.epsilon = 0.0
    assert all(agent.step(obs, explore=True) == greedy for _ in range(20))
    agent.epsilon = 1.0
    assert len({agent.step(obs, explore=True) for _ in range(60)}) == 3


# ---- losses against numpy ------------------------------------------------------------------------
@pytest.mark.parametrize('name', ['sac', 'rrd-sac'])
def test_sac_losses(name):
    agent = trained_agent(name)
    args, batch, w = agent.args, make_batch(agent.args, seed=2), weights(agent)
    alpha = np.exp(w['temperature/log_alpha'])
    action, log_p, _, _ = sac_pi_np(w, batch['obs'], batch['pi_noise'])
    q_pi = np.minimum(q_np(w, 'q1', batch['obs'], action), q_np(w, 'q2', batch['obs'], action))
    pi_loss = np.mean(alpha * log_p - q_pi)
    rews = batch['rews']
    expected = {'Pi_loss': pi_loss, 'Alpha': alpha}
    if args.alg == 'rrd':
        rews = reward_np(w, batch['obs'], batch['acts'], batch['obs_next'], False)
        r_loss, r_var = rrd_losses_np(w, batch, False)
        expected.update(R_loss=r_loss, R_var=r_var)
    action_next, log_p_next, _, _ = sac_pi_np(w, batch['obs_next'], batch['pi_next_noise'])
    v_next = np.minimum(q_np(w, 'q1_target', batch['obs_next'], action_next),
                        q_np(w, 'q2_target', batch['obs_next'], action_next)) - alpha * log_p_next
    target = rews + (1 - batch['done']) * args.gamma * v_next
    expected['Q_loss'] = mse(q_np(w, 'q1', batch['obs'], batch['acts']), target) \
        + mse(q_np(w, 'q2', batch['obs'], batch['acts']), target)
    check_info(agent.train(batch), expected)
    # the temperature took one Adam step (about alpha_lr) against the sign of its gradient
    grad = -(np.mean(log_p) - np.prod(args.acts_dims))
    step = weights(agent)['temperature/log_alpha'] - w['temperature/log_alpha']
    assert np.sign(step) == -np.sign(grad) and abs(abs(step) - args.alpha_lr) < 0.2 * args.alpha_lr


@pytest.mark.parametrize('bias_correction', [False, True])
def test_rrd_reward_update_follows_the_loss(bias_correction):
    """The reward net's first Adam step on its output kernel matches the numpy gradient of
    L - mean(v * c / K) (bias correction) or L; R_loss reports L either way."""
    agent = make_agent('rrd-sac', '--rrd_bias_correction', str(bias_correction))
    args, batch, w = agent.args, make_batch(agent.args, seed=2), weights(agent)
    e, k = batch['rrd_obs'].shape[:2]
    x = np.concatenate([batch[key].reshape(e * k, -1) for key in ('rrd_obs', 'rrd_acts')]
                       + [(batch['rrd_obs'] - batch['rrd_obs_next']).reshape(e * k, -1)], axis=-1)
    hidden = np.maximum(mlp_np(w, 'reward_net/net', x, layers=2), 0.0)
    r = (hidden @ w['reward_net/net/4/kernel'] + w['reward_net/net/4/bias']).reshape(e, k)
    r_mean = r.mean(axis=1, keepdims=True)
    grad_r = np.broadcast_to(2 * (r_mean - batch['rrd_rews']) / (e * k), (e, k))
    if bias_correction:
        grad_r = grad_r - 2 * batch['rrd_var_coef'] * (r - r_mean) / (e * k * (k - 1))
    grad = hidden.T @ grad_r.reshape(e * k, 1)
    info = agent.train(batch)
    np.testing.assert_allclose(info['R_loss'], np.mean((r_mean - batch['rrd_rews']) ** 2), rtol=2e-4)
    step = weights(agent)['reward_net/net/4/kernel'] - w['reward_net/net/4/kernel']
    # TF1 Adam's first step: -lr sqrt(1 - b2) g / (sqrt(1 - b2) |g| + eps)
    expected = -args.r_lr * math.sqrt(0.001) * grad / (math.sqrt(0.001) * np.abs(grad) + 1e-8)
    large = np.abs(grad) > 1e-5
    assert large.sum() > 50
    np.testing.assert_allclose(step[large], expected[large], rtol=1e-3)


@pytest.mark.parametrize('name', ['ddpg', 'rrd-ddpg'])
def test_ddpg_losses(name):
    agent = trained_agent(name)
    args, batch, w = agent.args, make_batch(agent.args, seed=2), weights(agent)
    data = np.concatenate([make_batch(args, seed=1)[key] for key in ('obs', 'obs_next')])
    obs, obs_next = normalize_np(batch['obs'], data), normalize_np(batch['obs_next'], data)
    np.testing.assert_allclose(w['normalizer/mean'], data.mean(axis=0), rtol=1e-5, atol=1e-6)
    pi_loss = -np.mean(ddpg_q_np(w, 'q', obs, np.tanh(mlp_np(w, 'pi/net', obs))))
    rews = batch['rews']
    expected = {'Pi_loss': pi_loss}
    if args.alg == 'rrd':
        rews = reward_np(w, obs, batch['acts'], obs_next, False)
        expected['R_loss'] = rrd_losses_np(w, batch, False, lambda x: normalize_np(x, data))[0]
    q_next = ddpg_q_np(w, 'q_target', obs_next, np.tanh(mlp_np(w, 'pi_target/net', obs_next)))
    target = rews + (1 - batch['done']) * args.gamma * q_next
    expected['Q_loss'] = mse(ddpg_q_np(w, 'q', obs, batch['acts']), target)
    q_vars = [f'q/{layer}/{kind}' for layer in ('obs_layer', 'net/0', 'net/2') for kind in ('kernel', 'bias')]
    expected['Q_reg_loss'] = np.mean([args.q_reg * np.sum(w[name] ** 2) / 2 for name in q_vars])
    check_info(agent.train(batch), expected)


@pytest.mark.parametrize('name', ['td3', 'rrd-td3'])
def test_td3_losses(name):
    agent = trained_agent(name)
    args, batch, w = agent.args, make_batch(agent.args, seed=2), weights(agent)
    obs, obs_next = batch['obs'], batch['obs_next']
    smoothing = np.clip(batch['target_noise'] * args.pi_t_std, -args.pi_t_clip, args.pi_t_clip)
    action_next = np.clip(np.tanh(mlp_np(w, 'pi_target/net', obs_next)) + smoothing, -1, 1)
    rews = batch['rews']
    expected = {}
    if args.alg == 'rrd':
        rews = reward_np(w, obs, batch['acts'], obs_next, False)
        expected['R_loss'] = rrd_losses_np(w, batch, False)[0]
    q_next = np.minimum(q_np(w, 'q1_target', obs_next, action_next), q_np(w, 'q2_target', obs_next, action_next))
    target = rews + (1 - batch['done']) * args.gamma * q_next
    expected['Q_loss'] = mse(q_np(w, 'q1', obs, batch['acts']), target) + mse(q_np(w, 'q2', obs, batch['acts']), target)
    check_info(agent.train_q(batch), expected)  # the reward net belongs to the critic step
    assert not np.array_equal(weights(agent)['q1/net/0/kernel'], w['q1/net/0/kernel'])
    np.testing.assert_array_equal(weights(agent)['pi/net/0/kernel'], w['pi/net/0/kernel'])
    w = weights(agent)
    check_info(agent.train_pi(batch), {'Pi_loss': -np.mean(q_np(w, 'q1', obs, np.tanh(mlp_np(w, 'pi/net', obs))))})


@pytest.mark.parametrize('double', [False, True])
@pytest.mark.parametrize('dueling', [False, True])
@pytest.mark.parametrize('name', ['dqn', 'rrd-dqn'])
def test_dqn_losses(name, double, dueling):
    agent = trained_agent(name, '--double', str(double), '--dueling', str(dueling))
    args, batch, w = agent.args, make_batch(agent.args, seed=2), weights(agent)
    q_next = dqn_q_np(w, 'q_target', batch['obs_next'], dueling)
    if double:
        best = dqn_q_np(w, 'q', batch['obs_next'], dueling).argmax(axis=-1)
        v_next = np.take_along_axis(q_next, best[:, None], axis=-1)
    else:
        v_next = q_next.max(axis=-1, keepdims=True)
    rews, expected = batch['rews'], {}
    if args.alg == 'rrd':
        rews = reward_np(w, batch['obs'], batch['acts'], batch['obs_next'], True)
        expected['R_loss'], expected['R_var'] = rrd_losses_np(w, batch, True)
    q = np.take_along_axis(dqn_q_np(w, 'q', batch['obs'], dueling), batch['acts'][:, None], axis=-1)
    expected['Q_loss'] = huber_np(q, rews + (1 - batch['done']) * args.gamma * v_next)
    check_info(agent.train(batch), expected)
    _, info = agent.step(batch['obs'][0], test_info=True)
    np.testing.assert_allclose(info['Q_average'], dqn_q_np(weights(agent), 'q', batch['obs'][:1], dueling).max(),
                               rtol=1e-5)


def test_dqn_rmsprop_matches_tf1_semantics():
    """ms starts at 1, ms <- decay ms + (1 - decay) g^2, w <- w - lr g / sqrt(ms + eps)."""
    agent = trained_agent('dqn', '--optimizer', 'rmsprop')
    args = agent.args
    w = weights(agent)
    assert w['q/torso/0/kernel/q_optimizer'].shape == w['q/torso/0/kernel'].shape  # the ms slot
    batch = make_batch(args, seed=2)
    agent.train(batch)
    after = weights(agent)
    ms = after['q/advantage/2/bias/q_optimizer']
    grad_sq = (ms - args.RMSProp_decay * w['q/advantage/2/bias/q_optimizer']) / (1 - args.RMSProp_decay)
    step = after['q/advantage/2/bias'] - w['q/advantage/2/bias']
    np.testing.assert_allclose(np.abs(step), args.q_lr * np.sqrt(grad_sq / (ms + args.RMSProp_eps)), rtol=1e-3)


# ---- one simultaneous step -----------------------------------------------------------------------
@pytest.mark.parametrize('name', ['sac', 'rrd-sac', 'ddpg', 'rrd-td3'])
def test_train_is_one_simultaneous_step(name, tmp_path):
    """train == train_pi and train_q each from the pre-call state: neither sees the other's update."""
    agent = trained_agent(name)
    batch, path = make_batch(agent.args, seed=2), str(tmp_path / 'state')
    agent.save_model(path)
    info = agent.train(batch)
    together = weights(agent)
    agent.load_model(path)
    pi_info = agent.train_pi(batch)
    after_pi = weights(agent)
    agent.load_model(path)
    q_info = agent.train_q(batch)
    after_q = weights(agent)
    assert {**pi_info, **q_info} == info
    pi_scopes = ('pi/', 'pi_optimizer/', 'temperature/', 'alpha_optimizer/')
    for key, value in together.items():
        source = after_pi if key.startswith(pi_scopes) else after_q
        np.testing.assert_array_equal(value, source[key], err_msg=key)


@pytest.mark.parametrize('name', ['sac', 'rrd-sac', 'ddpg', 'td3', 'dqn', 'rrd-dqn'])
def test_same_inputs_same_result(name, tmp_path):
    agent = trained_agent(name)
    batch, path = make_batch(agent.args, seed=2), str(tmp_path / 'state')
    agent.save_model(path)
    first_info, first = agent.train(batch), weights(agent)
    agent.load_model(path)
    second_info, second = agent.train(batch), weights(agent)
    assert first_info == second_info
    assert_same(first, second)


# ---- target updates ------------------------------------------------------------------------------
@pytest.mark.parametrize('name', ['sac', 'ddpg', 'td3', 'rrd-sac'])
def test_polyak_target_update(name):
    agent = trained_agent(name)
    before = weights(agent)
    agent.target_update()
    after = weights(agent)
    targets = [key for key in before if key.split('/')[0].endswith('_target')]
    assert len(targets) >= 12
    for key in targets:
        source = before[key.replace('_target/', '/', 1)]
        assert not np.array_equal(before[key], source), key
        expected = agent.args.polyak * before[key].astype(np.float64) + (1 - agent.args.polyak) * source
        np.testing.assert_allclose(after[key], expected, rtol=1e-6, atol=1e-7, err_msg=key)
    assert_same(before, after, [key for key in before if key not in targets])


def test_dqn_hard_target_update():
    agent = trained_agent('dqn', '--dueling', 'True')
    before = weights(agent)
    assert not np.array_equal(before['q_target/value/2/kernel'], before['q/value/2/kernel'])
    agent.target_update()
    after = weights(agent)
    for key in before:
        if key.startswith('q_target/'):
            np.testing.assert_array_equal(after[key], before['q/' + key[len('q_target/'):]], err_msg=key)


# ---- normaliser ----------------------------------------------------------------------------------
def test_random_normal_against_numpy():
    rng = np.random.RandomState(0)
    mean, log_std, other_mean, other_log_std, x = (rng.normal(size=(4, 3)).astype(F32) for _ in range(5))
    log_std[0, 0] = -9.0  # exp(-9) < the floor
    with tf.Graph().as_default(), v1.Session() as sess:
        dist = RandomNormal(tf.constant(mean), tf.constant(log_std), std_floor=1e-2)
        other = RandomNormal(tf.constant(other_mean), tf.constant(other_log_std))
        std, log_p, entropy, kl, sample = sess.run([dist.std, dist.log_p(tf.constant(x)), dist.entropy(),
                                                    dist.kl(other), dist.sample(tf.constant(x))])
    expected_std = np.maximum(np.exp(log_std), 1e-2)
    other_std = np.exp(other_log_std)
    np.testing.assert_allclose(std, expected_std, rtol=1e-6)
    np.testing.assert_allclose(sample, mean + expected_std * x, rtol=1e-5)
    z = (x - mean) / expected_std
    np.testing.assert_allclose(log_p, np.sum(-0.5 * np.log(2 * np.pi) - log_std - 0.5 * z ** 2, axis=-1, keepdims=True),
                               rtol=1e-5)
    np.testing.assert_allclose(entropy, np.sum(log_std + 0.5 * np.log(2 * np.pi * np.e), axis=-1, keepdims=True),
                               rtol=1e-5)
    np.testing.assert_allclose(kl, np.sum(other_log_std - log_std + (expected_std ** 2 + (mean - other_mean) ** 2)
                                          / (2 * other_std ** 2) - 0.5, axis=-1, keepdims=True), rtol=1e-4, atol=1e-5)


def test_normalizer_statistics_and_clip():
    graph = tf.Graph()
    with graph.as_default():
        sess = v1.Session(graph=graph)
        normalizer = Normalizer([3], sess)
        inputs = v1.placeholder(tf.float32, [None, 3])
        normalized = normalizer.normalize(inputs)
        sess.run(v1.global_variables_initializer())
    rng = np.random.RandomState(0)
    first, second = rng.normal(size=(10, 3)).astype(F32), rng.normal(size=(7, 3)).astype(F32)
    first[:, 2] = second[:, 2] = 4.0  # constant feature: std floored at 1e-2 (and no NaN from sqrt(-tiny))
    normalizer.update(first)
    normalizer.update(second)
    data = np.concatenate([first, second]).astype(np.float64)
    stats = dict(zip(('sum', 'sum_sqr', 'cnt', 'mean', 'std'),
                     sess.run([normalizer.sum, normalizer.sum_sqr, normalizer.cnt, normalizer.mean, normalizer.std])))
    np.testing.assert_allclose(stats['sum'], data.sum(axis=0), rtol=1e-5)
    np.testing.assert_allclose(stats['sum_sqr'], (data ** 2).sum(axis=0), rtol=1e-5)
    assert stats['cnt'].tolist() == [17.0]
    np.testing.assert_allclose(stats['mean'], data.mean(axis=0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(stats['std'][:2], data.std(axis=0)[:2], rtol=1e-4)
    assert stats['std'][2] == pytest.approx(1e-2)
    probe = np.array([[0.0, 100.0, 4.0], [0.0, -100.0, 5.0]], F32)
    np.testing.assert_allclose(sess.run(normalized, {inputs: probe}), normalize_np(probe, data), rtol=1e-4, atol=1e-5)


def test_normalizer_update_follows_obs_normalization():
    on, off = make_agent('ddpg'), make_agent('sac')
    assert off.normalizer is None and not any(key.startswith('normalizer') for key in weights(off))
    batch = make_batch(on.args)
    on.normalizer_update(batch)
    assert weights(on)['normalizer/cnt'].tolist() == [2 * len(batch['obs'])]


# ---- checkpoints ---------------------------------------------------------------------------------
@pytest.mark.parametrize('name', ['sac', 'rrd-sac', 'ddpg', 'td3', 'dqn', 'rrd-dqn-image'])
def test_save_load_round_trip(name, tmp_path):
    agent = trained_agent(name)
    path = str(tmp_path / 'ckpt')
    agent.save_model(path)
    agent.save_model(path)  # overwriting a checkpoint works too
    assert sorted(os.listdir(tmp_path)) == ['ckpt']
    with open(os.path.join(path, META_FILE)) as file:
        assert json.load(file)['backend'] == 'tf'
    other = make_agent(name, seed=7)
    other.load_model(path)
    assert_same(weights(agent), weights(other))  # networks, targets, optimiser slots, normaliser
    obs = make_batch(agent.args, seed=3)['obs'][0]
    assert np.array_equal(agent.step(obs), other.step(obs))
    batch = make_batch(agent.args, seed=4)
    assert agent.train(batch) == other.train(batch)
    assert_same(weights(agent), weights(other))


def test_sac_checkpoints_do_not_depend_on_alpha_lr(tmp_path):
    fixed = make_agent('sac', alpha_lr=0.0)
    assert set(weights(fixed)) == set(weights(make_agent('sac')))
    fixed.train(make_batch(fixed.args))
    assert weights(fixed)['temperature/log_alpha'] == 0.0  # log(alpha_init = 1), never updated
    fixed.save_model(str(tmp_path / 'ckpt'))
    make_agent('sac').load_model(str(tmp_path / 'ckpt'))


def test_checkpoint_errors(tmp_path):
    agent = make_agent('sac')
    path = str(tmp_path / 'ckpt')
    with pytest.raises(CheckpointError, match='no TF checkpoint directory'):
        agent.load_model(path)
    (tmp_path / 'file.pt').write_bytes(b'not a checkpoint')
    with pytest.raises(CheckpointError, match='that is a file'):
        agent.load_model(str(tmp_path / 'file.pt'))
    (tmp_path / 'empty').mkdir()
    with pytest.raises(CheckpointError, match='meta.json'):
        agent.load_model(str(tmp_path / 'empty'))

    agent.save_model(path)
    with pytest.raises(CheckpointError, match='obs_dims'):
        make_agent('sac', obs_dims=[6]).load_model(path)
    with pytest.raises(CheckpointError, match='alg'):
        make_agent('rrd-sac').load_model(path)

    data = [name for name in os.listdir(path) if name.startswith(CHECKPOINT_PREFIX + '.data')]
    assert len(data) == 1
    with open(os.path.join(path, data[0]), 'r+b') as file:
        file.truncate(100)
    with pytest.raises(CheckpointError, match='corrupt'):
        agent.load_model(path)
    os.remove(os.path.join(path, CHECKPOINT_PREFIX + '.index'))
    with pytest.raises(CheckpointError, match='corrupt'):
        agent.load_model(path)
    with open(os.path.join(path, META_FILE), 'w') as file:
        file.write('{not json')
    with pytest.raises(CheckpointError, match='meta.json'):
        agent.load_model(path)


def test_tf_path_imports_no_torch(fresh_run_modules):
    """tensorboardX imports torch whenever it can; the Logger keeps it out (utils/os_utils.import_tensorboardx)."""
    modules = fresh_run_modules(use_pytorch=False)
    assert 'algorithm.rrd' in modules and 'tensorboardX' in modules and 'torch' not in modules
