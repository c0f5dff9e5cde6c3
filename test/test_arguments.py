"""Tests for arguments.py: defaults per env category and algorithm, booleans, validation."""
import os
import subprocess
import sys

import pytest

import algorithm
from arguments import check_run, env_is_discrete, get_args

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(autouse=True)
def no_env_backend(monkeypatch):
    monkeypatch.delenv('USE_PYTORCH', raising=False)


def parse_error(capsys, argv):
    """Parse `argv`, expect exit status 2 and return the single 'error:' line."""
    with pytest.raises(SystemExit) as exc:
        get_args(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert 'Traceback' not in err
    lines = [line for line in err.splitlines() if 'error:' in line]
    assert len(lines) == 1, err
    return lines[0]


def test_mujoco_rrd_defaults():
    args = get_args([])
    assert (args.env, args.alg, args.basis_alg, args.env_type) == ('Ant-v2', 'rrd', 'sac', 'ep_rews')
    assert (args.epochs, args.cycles, args.iterations, args.timesteps) == (3, 100, 100, 100)
    assert (args.test_rollouts, args.test_timesteps, args.save_rews) == (10, 1000, True)
    assert (args.buffer_size, args.batch_size, args.warmup, args.gamma) == (1000000, 256, 10000, 0.99)
    assert (args.train_batches, args.train_target, args.polyak) == (100, 1, 0.995)
    assert (args.pi_lr, args.q_lr, args.alpha_lr, args.alpha_init) == (3e-4, 3e-4, 3e-4, 1.0)
    assert (args.r_lr, args.rrd_batch_size, args.rrd_sample_size) == (3e-4, 256, 64)
    assert args.rrd_bias_correction is False and args.obs_normalization is False
    assert (args.tag, args.seed, args.logdir, args.save_model, args.load_model) == ('', 0, 'log', False, None)
    assert args.use_pytorch is None and args.cuda is None
    assert args.env_category == 'mujoco' and args.discrete is False
    assert not hasattr(args, 'sticky') and not hasattr(args, 'eps_l')


def test_atari_overrides():
    args = get_args(['--env', 'Pong'])
    assert args.env_category == 'atari' and args.discrete is True and args.basis_alg == 'dqn'
    assert (args.epochs, args.cycles, args.iterations, args.test_rollouts) == (10, 20, 500, 5)
    assert (args.test_timesteps, args.batch_size, args.warmup) == (27000, 32, 30000)
    assert (args.sticky, args.noop, args.frames, args.test_eps, args.rews_scale) == (False, 30, 4, 0.001, 1.0)
    assert (args.train_batches, args.train_target, args.eps_l, args.eps_r) == (25, 8000, 1.0, 0.01)
    assert (args.eps_decay, args.optimizer, args.q_lr, args.Adam_eps) == (250000, 'adam', 6.25e-5, 1.5e-4)
    assert (args.double, args.dueling, args.obs_normalization) == (False, False, False)
    assert (args.rrd_batch_size, args.rrd_sample_size) == (32, 32)
    assert not hasattr(args, 'pi_lr')


def test_rmsprop_defaults():
    args = get_args(['--env', 'Breakout', '--alg', 'dqn', '--optimizer', 'rmsprop'])
    assert (args.q_lr, args.RMSProp_decay, args.RMSProp_eps) == (2.5e-4, 0.95, 0.01)
    assert not hasattr(args, 'Adam_eps') and not hasattr(args, 'r_lr')


def test_actor_critic_specifics():
    ddpg = get_args(['--alg', 'ddpg'])
    assert (ddpg.obs_normalization, ddpg.pi_lr, ddpg.q_lr, ddpg.polyak) == (True, 1e-4, 1e-3, 0.999)
    assert (ddpg.q_reg, ddpg.std_act, ddpg.train_target) == (0.01, 0.1, 2)
    td3 = get_args(['--alg', 'td3', '--env', 'HalfCheetah-v4'])
    assert (td3.std_act, td3.pi_t_std, td3.pi_t_clip, td3.pi_delay_freq) == (0.1, 0.2, 0.5, 2)
    assert (td3.pi_lr, td3.q_lr, td3.polyak, td3.train_target) == (3e-4, 3e-4, 0.995, 2)
    assert not hasattr(td3, 'basis_alg') and not hasattr(td3, 'alpha_lr')
    rrd_td3 = get_args(['--basis_alg', 'td3'])
    assert rrd_td3.pi_delay_freq == 2 and rrd_td3.rrd_sample_size == 64


def test_explicit_flag_beats_conditional_default():
    args = get_args(['--env', 'Pong', '--epochs', '2', '--batch_size', '64', '--rrd_sample_size=8'])
    assert (args.epochs, args.batch_size, args.rrd_sample_size, args.cycles) == (2, 64, 8, 20)
    ddpg = get_args(['--alg', 'ddpg', '--obs_normalization', 'false', '--pi_lr', '5e-4'])
    assert ddpg.obs_normalization is False and ddpg.pi_lr == 5e-4
    ircr = get_args(['--alg', 'ircr', '--buffer_size', '1e6', '--polyak', '0.99'])
    assert (ircr.buffer_size, ircr.polyak, ircr.batch_size) == (1000000, 0.99, 512)


def test_ircr_overrides():
    args = get_args(['--alg', 'ircr', '--env', 'Hopper-v2'])
    assert (args.buffer_size, args.polyak, args.batch_size) == (300000, 0.999, 512)
    assert (args.alpha_lr, args.alpha_init) == (3e-4, 1.0)
    assert not hasattr(args, 'rrd_sample_size')
    humanoid = get_args(['--alg', 'ircr', '--env', 'Humanoid-v2'])
    assert (humanoid.alpha_lr, humanoid.alpha_init, humanoid.buffer_size) == (0.0, 0.1, 300000)
    standup = get_args(['--alg', 'ircr', '--env', 'HumanoidStandup-v2'])
    assert standup.alpha_init == 1.0
    atari = get_args(['--alg', 'ircr', '--env', 'Pong'])
    assert (atari.buffer_size, atari.batch_size, atari.basis_alg) == (1000000, 32, 'dqn')


def test_classic_envs():
    assert get_args(['--env', 'CartPole-v1', '--alg', 'dqn']).discrete is True
    assert get_args(['--env', 'Acrobot-v1']).basis_alg == 'dqn'
    pendulum = get_args(['--env', 'Pendulum-v1', '--alg', 'sac'])
    assert pendulum.discrete is False and pendulum.env_category == 'classic'
    assert env_is_discrete('CartPole-v1') and env_is_discrete('Pong')
    assert not env_is_discrete('Pendulum-v1') and not env_is_discrete('Ant-v5')


@pytest.mark.parametrize('text, value', [
    ('true', True), ('True', True), ('YES', True), ('1', True),
    ('false', False), ('No', False), ('0', False), ('FALSE', False)])
def test_boolean_variants(text, value):
    assert get_args(['--save_rews', text]).save_rews is value
    assert get_args([f'--rrd_bias_correction={text}']).rrd_bias_correction is value


def test_bare_boolean_flag_means_true():
    assert get_args(['--save_model']).save_model is True


def test_use_pytorch_from_environment(monkeypatch):
    monkeypatch.setenv('USE_PYTORCH', '1')
    assert get_args([]).use_pytorch is True
    assert get_args(['--use_pytorch', 'no']).use_pytorch is False
    monkeypatch.setenv('USE_PYTORCH', 'perhaps')
    with pytest.raises(SystemExit):
        get_args([])


@pytest.mark.parametrize('argv, words', [
    (['--env', 'Ant-v9'], ["unknown --env 'Ant-v9'", 'Ant-v2']),
    (['--alg', 'a2c'], ['--alg', 'a2c']),
    (['--basis_alg', 'ppo'], ['--basis_alg', 'ppo']),
    (['--alg', 'dqn'], ['dqn', 'continuous']),
    (['--env', 'Pong', '--alg', 'ddpg'], ['ddpg', 'discrete']),
    (['--env', 'CartPole-v1', '--alg', 'sac'], ['sac', 'discrete']),
    (['--env', 'Pong', '--basis_alg', 'sac'], ['--basis_alg sac', 'discrete']),
    (['--alg', 'ircr', '--basis_alg', 'dqn'], ['--basis_alg dqn', 'continuous']),
    (['--rrd_sample_size', '512'], ['--rrd_sample_size', '--rrd_batch_size']),
    (['--rrd_bias_correction', 'true', '--rrd_sample_size', '1'], ['--rrd_bias_correction']),
    (['--save_rews', 'maybe'], ['--save_rews', 'true/false/yes/no/1/0']),
    (['--epochs', 'two'], ['--epochs', 'integer']),
    (['--warmup', '2000', '--buffer_size', '1000'], ['--warmup', '--buffer_size']),
    (['--alg', 'td3', '--polyak', '1.5'], ['--polyak', '[0, 1]']),
    (['--pi_lr', '-0.001'], ['--pi_lr', '>= 0']),
    (['--r_lr', 'nan'], ['--r_lr']),
    (['--env', 'Pong', '--sticky', 'true', '--frames', '8', '--noop', '4'], ['--noop']),
    (['--env_type', 'dense'], ['--env_type']),
    (['--sticky', 'true'], ['unrecognized', '--sticky']),
    (['--alg', 'sac', '--basis_alg', 'td3'], ['unrecognized', '--basis_alg']),
    (['--load_model', '/nonexistent/ckpt'], ['--load_model', 'no checkpoint']),
    (['--warmup', '0'], ['--warmup', 'positive']),
    (['--threads', '100000'], ['--threads 100000', 'per CPU core', '0 for all cores']),
    (['--use_pytorch', 'false', '--amp'], ['--amp needs the PyTorch backend', '--use_pytorch True']),
    (['--use_pytorch', 'false', '--compile', 'true'], ['--compile needs the PyTorch backend']),
] + [([f'--{name}', '0'], [f'--{name}', 'positive']) for name in (
    'batch_size', 'epochs', 'cycles', 'iterations', 'timesteps', 'test_rollouts',
    'test_timesteps', 'buffer_size', 'train_batches', 'train_target', 'rrd_batch_size')]
  + [(['--env', 'Pong', '--frames', '0'], ['--frames', 'positive'])])
def test_bad_input(capsys, argv, words):
    line = parse_error(capsys, argv)
    for word in words:
        assert word in line, line


def test_unknown_env_lists_ids_by_category(capsys):
    with pytest.raises(SystemExit):
        get_args(['--env', 'NoSuchEnv'])
    err = capsys.readouterr().err
    for text in ('mujoco:', 'atari:', 'classic:', 'HalfCheetah-v2', 'Pong', 'CartPole-v1'):
        assert text in err


def test_cuda_validation(capsys, monkeypatch):
    torch = pytest.importorskip('torch')
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    assert 'CUDA is not available' in parse_error(capsys, ['--cuda', 'true', '--use_pytorch', 'true'])
    assert '--use_pytorch' in parse_error(capsys, ['--cuda', 'true', '--use_pytorch', 'false'])
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    assert get_args(['--cuda', 'true', '--use_pytorch', 'true']).cuda is True
    assert get_args(['--cuda', 'false']).cuda is False
    # Unset, the backend is TensorFlow when it is installed: --cuda True fails as with --use_pytorch False.
    monkeypatch.setattr(algorithm, '_installed', lambda backend: True)
    assert 'needs the PyTorch backend' in parse_error(capsys, ['--cuda', 'true'])


def test_threads_bound_is_per_core(capsys, monkeypatch):
    monkeypatch.setattr(os, 'cpu_count', lambda: 3)
    assert get_args(['--threads', '12']).threads == 12
    assert 'pass at most 12' in parse_error(capsys, ['--threads', '13'])


def test_resume_skips_the_load_model_check(tmp_path, capsys, monkeypatch):
    """A resume restores its run's own checkpoint, so the run's saved --load_model (here a relative
    path that does not resolve from this folder) is not checked again."""
    args = get_args(['--env', 'CartPole-v1', '--alg', 'dqn', '--use_pytorch', 'true'])
    args.obs_dims, args.acts_dims = [4], [2]
    monkeypatch.chdir(tmp_path)
    args.load_model = 'src.pt'
    args.resume = str(tmp_path / 'models' / 'run')
    check_run(args)
    args.resume = None
    with pytest.raises(SystemExit) as exc:
        check_run(args)
    assert exc.value.code == 2 and 'src.pt' in capsys.readouterr().err


def test_load_model_accepts_checkpoint_prefix(tmp_path):
    (tmp_path / 'Ant-v2-epoch1.index').write_text('')
    prefix = str(tmp_path / 'Ant-v2-epoch1')
    assert get_args(['--load_model', prefix]).load_model == prefix


@pytest.mark.parametrize('argv, flags', [
    ([], ['--rrd_sample_size', '--basis_alg', '--alpha_init', '--use_pytorch', '--cuda']),
    (['--env', 'Pong'], ['--sticky', '--eps_decay', '--Adam_eps', '--rrd_batch_size']),
])
def test_help(capsys, argv, flags):
    with pytest.raises(SystemExit) as exc:
        get_args(argv + ['--help'])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for flag in flags:
        assert flag in out


def test_help_from_command_line():
    """`python -c ...get_args()` with --help reads sys.argv, exits 0, no traceback."""
    proc = subprocess.run([sys.executable, '-c', 'import arguments; arguments.get_args()', '--help'],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert '--rrd_sample_size' in proc.stdout and 'Traceback' not in proc.stderr
