"""tools/convert_checkpoint.py: TF checkpoints to torch and back (project issue #4)."""
import os
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip('tensorflow')
torch = pytest.importorskip('torch')

from tools.convert_checkpoint import build_agents, main  # noqa: E402
from tools.weight_transfer import read_tf, tf_only_names  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RRD_SAC = ['--env', 'Hopper-v2', '--alg', 'rrd', '--basis_alg', 'sac', '--rrd_bias_correction', 'True']
DQN = ['--env', 'CartPole-v1', '--alg', 'dqn', '--optimizer', 'rmsprop', '--dueling', 'True',
       '--obs_normalization', 'True']


@pytest.fixture(autouse=True)
def no_env_backend(monkeypatch):
    monkeypatch.delenv('USE_PYTORCH', raising=False)


def batch(args, seed):
    rng = np.random.RandomState(seed)
    b, obs_dim, act_dim = 16, args.obs_dims[0], args.acts_dims[0]
    out = {'obs': rng.normal(size=(b, obs_dim)).astype(np.float32),
           'obs_next': rng.normal(size=(b, obs_dim)).astype(np.float32),
           'acts': rng.randint(0, act_dim, size=b) if args.discrete
           else rng.uniform(-1, 1, size=(b, act_dim)).astype(np.float32),
           'rews': rng.normal(size=(b, 1)).astype(np.float32), 'done': np.zeros((b, 1), np.float32)}
    if args.alg == 'rrd':
        out.update({'rrd_obs': rng.normal(size=(2, 4, obs_dim)).astype(np.float32),
                    'rrd_obs_next': rng.normal(size=(2, 4, obs_dim)).astype(np.float32),
                    'rrd_acts': rng.uniform(-1, 1, size=(2, 4, act_dim)).astype(np.float32),
                    'rrd_rews': rng.normal(size=(2, 1)).astype(np.float32),
                    'rrd_var_coef': np.full((2, 1), 0.5, np.float32)})
    return out


def trained_tf_checkpoint(flags, path):
    """A TF agent after a few updates (so every optimiser moment and step count is non-trivial), saved."""
    tf_agent = build_agents(flags)['tf']
    for seed in range(3):
        tf_agent.normalizer_update(batch(tf_agent.args, seed))
        tf_agent.train(batch(tf_agent.args, seed))
        tf_agent.target_update()
    tf_agent.save_model(str(path))
    return tf_agent


@pytest.mark.parametrize('flags', [RRD_SAC, DQN], ids=['rrd-sac', 'dqn-rmsprop-dueling-norm'])
def test_tf_to_torch_and_back(tmp_path, flags):
    tf_agent = trained_tf_checkpoint(flags, tmp_path / 'tf')
    main(['--to', 'torch', str(tmp_path / 'tf'), str(tmp_path / 'model.pt'), *flags])
    torch_agent = build_agents(flags)['torch']
    torch_agent.load_model(str(tmp_path / 'model.pt'))

    obs = batch(tf_agent.args, 7)['obs'][0]
    noise = None if tf_agent.args.discrete else np.array([0.3, -1.0, 0.5], np.float32)
    for explore in (False, True):
        if explore and noise is None:
            continue
        tf_action, tf_info = tf_agent.step(obs, explore=explore, test_info=True, noise=noise)
        torch_action, torch_info = torch_agent.step(obs, explore=explore, test_info=True, noise=noise)
        np.testing.assert_allclose(torch_action, tf_action, rtol=0, atol=1e-5)
        for key in tf_info:
            np.testing.assert_allclose(torch_info[key], tf_info[key], rtol=1e-5, atol=1e-6, err_msg=key)

    main(['--to', 'tf', str(tmp_path / 'model.pt'), str(tmp_path / 'tf2'), *flags])
    agents = build_agents(flags)
    agents['tf'].load_model(str(tmp_path / 'tf2'))
    want, got, skip = read_tf(tf_agent), read_tf(agents['tf']), tf_only_names(agents['torch'], agents['tf'])
    assert want.keys() == got.keys()
    for key in want:
        if key.endswith('_power'):  # Adam's step count, re-encoded as beta^(t+1)
            np.testing.assert_allclose(got[key], want[key], rtol=1e-6, err_msg=key)
        elif key not in skip:  # RMSProp's momentum slot has no torch twin (momentum 0: never read)
            np.testing.assert_array_equal(got[key], want[key], err_msg=key)


def test_mismatches_are_refused(tmp_path):
    trained_tf_checkpoint(DQN, tmp_path / 'tf')

    def refused(src, to, flags):
        with pytest.raises(SystemExit) as error:
            main(['--to', to, str(src), str(tmp_path / 'out'), *flags])
        message = str(error.value.code)
        assert message.startswith('error: ') and '\n' not in message
        return message

    assert "alg: checkpoint has 'dqn', this run has 'rrd'" in refused(
        tmp_path / 'tf', 'torch', DQN[:2] + ['--alg', 'rrd', '--basis_alg', 'dqn'] + DQN[4:])
    assert 'obs_dims: checkpoint has [4], this run has [6]' in refused(
        tmp_path / 'tf', 'torch', ['--env', 'Acrobot-v1'] + DQN[2:])
    assert 'dueling' in refused(tmp_path / 'tf', 'torch', DQN[:-4] + ['--obs_normalization', 'True'])
    assert "optimizer: checkpoint has 'rmsprop', this run has 'adam'" in refused(
        tmp_path / 'tf', 'torch', DQN[:4] + ['--optimizer', 'adam'] + DQN[6:])
    assert 'pass --to torch' in refused(tmp_path / 'tf', 'tf', DQN)
    assert refused(tmp_path / 'missing', 'torch', DQN) == f'error: no checkpoint at {tmp_path / "missing"}; check the SRC path'
    assert not os.path.exists(tmp_path / 'out')


def test_command_line(tmp_path):
    trained_tf_checkpoint(DQN, tmp_path / 'tf')
    env = {key: value for key, value in os.environ.items() if key != 'USE_PYTORCH'}
    script = os.path.join(ROOT, 'tools', 'convert_checkpoint.py')
    done = subprocess.run([sys.executable, script, '--to', 'torch', str(tmp_path / 'tf'), str(tmp_path / 'a.pt'), *DQN],
                          capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    assert torch.load(tmp_path / 'a.pt', weights_only=True)['meta']['backend'] == 'torch'
    done = subprocess.run([sys.executable, script, '--to', 'tf', str(tmp_path / 'a.pt'), str(tmp_path / 'b'),
                           '--env', 'CartPole-v1', '--alg', 'dqn'], capture_output=True, text=True, env=env)
    assert done.returncode == 1 and done.stderr.strip().splitlines()[-1].startswith('error: checkpoint')
