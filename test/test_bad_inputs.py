"""The front door (issue 8): every misuse of train.py ends with one line `error: <problem>; <fix>`,
exit status 2 and no traceback, before anything is written under --logdir (or anywhere else).

Each row runs `train.main` in-process; a few rows also run as real subprocesses to show the
behaviour end to end. Rows that get past argument parsing fail in `arguments.check_run`, once the
env is built; they use a tiny CartPole configuration so that a check that stopped working would
train for a moment, write its logs and fail the row.
"""
import importlib.util
import json
import os
import subprocess
import sys
import zipfile

import pytest
import torch

import algorithm
import arguments
import train

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = ['--env=CartPole-v1', '--alg=dqn', '--epochs=1', '--cycles=1', '--iterations=1', '--timesteps=10',
        '--warmup=10', '--batch_size=8', '--test_rollouts=1', '--test_timesteps=20', '--buffer_size=200',
        '--train_batches=1', '--train_target=1']
TORCH, TF = ['--use_pytorch=True', '--cuda=False'], ['--use_pytorch=False']


def hide_modules(*names):
    """A setup making importlib.util.find_spec report `names` as not installed."""
    def setup(monkeypatch):
        real = importlib.util.find_spec
        monkeypatch.setattr(importlib.util, 'find_spec',
                            lambda name, *args, **kwargs: None if name in names else real(name, *args, **kwargs))
    return setup


def no_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)


def use_pytorch_env(value):
    return lambda monkeypatch: monkeypatch.setenv('USE_PYTORCH', value)


def tf_installed(monkeypatch):
    """With neither --use_pytorch nor USE_PYTORCH, TensorFlow is picked when it is installed."""
    monkeypatch.setattr(algorithm, '_installed', lambda backend: True)


# name: (argv, words the error line must contain[, setup(monkeypatch)]). In argv, `{tmp}` is the
# test's folder (the cwd), holding the bad files that `workspace` makes. --logdir is {tmp}/log
# unless a row gives its own.
ROWS = {
    # ---- what to run -------------------------------------------------------------------------------
    'unknown env': (['--env', 'Ant-v9'], ["unknown --env 'Ant-v9'", 'did you mean', 'Ant-v2', 'classic:']),
    'unknown alg': (['--alg', 'a2c'], ['--alg', "invalid choice: 'a2c'", 'see --help']),
    'unknown basis alg': (['--basis_alg', 'ppo'], ['--basis_alg', "invalid choice: 'ppo'"]),
    'dqn on a continuous env': (['--env', 'Pendulum-v1', '--alg', 'dqn'],
                                ['--alg dqn needs a discrete action space', 'Pendulum-v1', 'use ddpg, td3 or sac']),
    'sac on a discrete env': (['--env', 'CartPole-v1', '--alg', 'sac'],
                              ['--alg sac needs a continuous action space', 'use dqn']),
    'rrd over sac on Atari': (['--env', 'Pong', '--basis_alg', 'sac'], ['--basis_alg sac', 'discrete', 'use dqn']),
    'flag of another configuration': (['--sticky', 'true'], ['unrecognized arguments: --sticky', 'see --help']),
    'flag without its value': (['--env'], ['--env', 'expected one argument']),
    'bad --env_type': (['--env_type', 'dense'], ['--env_type', "invalid choice: 'dense'"]),
    # ---- types and ranges --------------------------------------------------------------------------
    'word for an int': (['--epochs', 'two'], ['--epochs', "expected an integer, got 'two'"]),
    'fraction for an int': (['--batch_size', '2.5'], ['--batch_size', "expected an integer, got '2.5'"]),
    'word for a float': (['--gamma', 'high'], ['--gamma', "invalid float value: 'high'"]),
    'bad boolean': (['--save_rews', 'maybe'], ['--save_rews', 'true/false/yes/no/1/0']),
    'zero epochs': (['--epochs', '0'], ['--epochs must be positive, got 0', 'pass a value > 0']),
    'negative batch size': (['--batch_size', '-32'], ['--batch_size must be positive, got -32']),
    'negative learning rate': (['--pi_lr', '-0.001'], ['--pi_lr must be >= 0, got -0.001']),
    'nan learning rate': (['--q_lr', 'nan'], ['--q_lr must be >= 0, got nan']),
    'infinite learning rate': (['--pi_lr', 'inf'], ['--pi_lr must be a finite number, got inf']),
    'overflowing temperature': (['--alpha_init', '1e400'], ['--alpha_init must be a finite number, got inf']),
    'gamma above 1': (['--gamma', '1.5'], ['--gamma must be in [0, 1], got 1.5']),
    'negative polyak': (['--alg', 'td3', '--polyak', '-0.1'], ['--polyak must be in [0, 1], got -0.1']),
    'epsilon above 1': (['--env', 'CartPole-v1', '--alg', 'dqn', '--eps_l', '2'], ['--eps_l must be in [0, 1]']),
    'negative seed': (['--seed', '-1'], ['--seed must be in [0, 2**32 - 1]', 'got -1']),
    'zero warmup': (TINY + TORCH + ['--warmup=0'], ['--warmup must be positive, got 0', 'pass a value > 0']),
    'absurd thread count': (TINY + TORCH + ['--threads=100000'],
                            ['--threads 100000 is more than 4 per CPU core', 'pass at most', '0 for all cores']),
    # ---- combinations ------------------------------------------------------------------------------
    'buffer smaller than an episode': (['--buffer_size', '500', '--warmup', '100'],
                                       ['--buffer_size (500) cannot hold one episode of --test_timesteps (1000)',
                                        'raise --buffer_size or lower --test_timesteps']),
    'warmup beyond the buffer': (['--warmup', '2000000'], ['--warmup (2000000) must not exceed --buffer_size']),
    'rrd sample size above its batch': (['--rrd_sample_size', '512'],
                                        ['--rrd_sample_size (512) must not exceed --rrd_batch_size (256)']),
    'bias correction with K=1': (['--rrd_bias_correction', 'true', '--rrd_sample_size', '1'],
                                 ['--rrd_bias_correction needs --rrd_sample_size > 1']),
    'fewer no-ops than frames': (['--env', 'Pong', '--frames', '8', '--noop', '4'],
                                 ['--noop (4) must be >= --frames (8)', 'raise --noop or lower --frames']),
    # ---- backends ----------------------------------------------------------------------------------
    'bad USE_PYTORCH': ([], ["USE_PYTORCH='perhaps' is not a boolean", 'unset it'], use_pytorch_env('perhaps')),
    'torch not installed': (TORCH, ['PyTorch backend was requested but is not installed', 'pip install -r requirements.txt'],
                            hide_modules('torch')),
    'tensorflow not installed': (TF, ['TensorFlow backend was requested but is not installed',
                                      'requirements-tf.txt'], hide_modules('tensorflow')),
    'cuda without a GPU': (['--use_pytorch=True', '--cuda=True'], ['CUDA is not available', 'use --cuda False'],
                           no_cuda),
    'cuda with TensorFlow': (['--use_pytorch=False', '--cuda=True'], ['--cuda True needs the PyTorch backend']),
    'cuda with the auto-selected TensorFlow': (['--cuda=True'], ['--cuda True needs the PyTorch backend',
                                                                 'pass --use_pytorch True or drop --cuda True'],
                                               tf_installed),
    'amp with TensorFlow': (TINY + TF + ['--amp=True'], ['--amp needs the PyTorch backend',
                                                        'pass --use_pytorch True or drop --amp']),
    'amp with the auto-selected TensorFlow': (TINY + ['--amp'], ['--amp needs the PyTorch backend', 'would use '
                                                                 'TensorFlow'], tf_installed),
    'compile with TensorFlow': (TINY + TF + ['--compile=True'], ['--compile needs the PyTorch backend',
                                                                'pass --use_pytorch True or drop --compile']),
    'compile with the auto-selected TensorFlow': (TINY + ['--compile'], ['--compile needs the PyTorch backend'],
                                                  tf_installed),
    'replay buffer on the device with the auto-selected TensorFlow': (
        TINY + ['--buffer_on_device'], ['--buffer_on_device needs the PyTorch backend'], tf_installed),
    # ---- names and folders -------------------------------------------------------------------------
    'tag traversal': (['--tag=../../../x'], ['--tag', "'../../../x' is not a folder name", 'no / or \\']),
    'tag with a folder': (['--tag=a/b'], ['--tag', "'a/b' is not a folder name"]),
    'tag of dots': (['--tag=..'], ['--tag', "'..' is not a folder name"]),
    'tag with a newline': (['--tag=a\nb'], ['--tag', "'a\\nb' is not a folder name", 'no control characters']),
    'empty logdir': (['--logdir='], ['--logdir is empty', 'pass a folder']),
    'run name traversal': (['--run_name=../elsewhere'], ['--run_name', "'../elsewhere' is not a plain name"]),
    'logdir is a file': (['--logdir={tmp}/a_file'], ['--logdir {tmp}/a_file is a file', 'pass a folder']),
    'logdir below a file': (['--logdir={tmp}/a_file/log'], ['cannot be created: {tmp}/a_file is a file']),
    'logdir not writable': (['--logdir=/proc/rrd-log'], ['--logdir /proc/rrd-log is not writable',
                                                         'pass a folder you can write to']),
    # ---- checkpoints (--load_model) ----------------------------------------------------------------
    'no checkpoint there': (['--load_model={tmp}/missing.pt'], ["no checkpoint found at '{tmp}/missing.pt'"]),
    'empty torch checkpoint': (TINY + TORCH + ['--load_model={tmp}/empty.pt'],
                               ['{tmp}/empty.pt is not a readable torch checkpoint (an empty file)',
                                'pick another checkpoint']),
    'random bytes as a torch checkpoint': (TINY + TORCH + ['--load_model={tmp}/random.pt'],
                                           ['{tmp}/random.pt is not a readable torch checkpoint',
                                            'not the zip archive torch.save writes']),
    'zip that is no torch checkpoint': (TINY + TORCH + ['--load_model={tmp}/other.zip'],
                                        ['{tmp}/other.zip is not a readable torch checkpoint', 'corrupt']),
    'torch checkpoint of another agent': (TINY + TORCH + ['--load_model={tmp}/ddpg.pt'],
                                          ["alg: checkpoint has 'ddpg', this run has 'dqn'",
                                           'obs_dims: checkpoint has [17], this run has [4]',
                                           'pass the flags it was trained with']),
    'TF checkpoint given to torch': (TINY + TORCH + ['--load_model={tmp}/tf_ckpt'],
                                     ['{tmp}/tf_ckpt is a directory', 'load it with --use_pytorch False']),
    'torch checkpoint given to TF': (TINY + TF + ['--load_model={tmp}/ddpg.pt'],
                                     ['no TF checkpoint directory at {tmp}/ddpg.pt: that is a file',
                                      'load it with --use_pytorch True']),
    'TF checkpoint without meta.json': (TINY + TF + ['--load_model={tmp}/no_meta'],
                                        ['{tmp}/no_meta has no readable meta.json', 'pick another checkpoint']),
    'TF checkpoint without its index': (TINY + TF + ['--load_model={tmp}/no_index'],
                                        ['{tmp}/no_index lacks model.index', 'corrupt or incomplete']),
    'replay buffer on the device with TF': (TINY + TF + ['--buffer_on_device=True'],
                                            ['--buffer_on_device needs the PyTorch backend', '--use_pytorch True']),
    'replay buffer on the device with IRCR': (TINY + TORCH + ['--alg=ircr', '--buffer_on_device=True'],
                                              ['does not support --alg ircr', 'drop --buffer_on_device']),
    # ---- memory ------------------------------------------------------------------------------------
    'absurd batch size (torch)': (TINY + TORCH + ['--batch_size=1e12'],
                                  ['one update (--batch_size 1000000000000:', 'use a smaller --batch_size']),
    'absurd batch size (TF)': (TINY + TF + ['--batch_size=1e12'], ['one update (--batch_size 1000000000000:']),
    'absurd RRD batch size': (TINY + TORCH + ['--alg=rrd', '--rrd_batch_size=1e12'],
                              ['--rrd_batch_size 1000000000000:', 'use a smaller --batch_size or --rrd_batch_size']),
    'absurd buffer size': (TINY + TORCH + ['--buffer_size=1e13'],
                           ['the replay buffer (--buffer_size 10000000000000:', 'use a smaller --buffer_size']),
    # ---- resuming (--resume; `workspace` holds a run 'fake-run': CartPole-v1, dqn, seed 0) ----------
    'resume a run that is not there': (['--resume', 'nosuchrun'],
                                       ["--resume nosuchrun: no run 'nosuchrun' in", 'give a run folder']),
    'resume a file': (['--resume', '{tmp}/a_file'], ['no run folder there', 'give a run name']),
    'resume with a flag the run does not have': (['--resume', 'fake-run', '--seed', '3'],
                                                 ['--seed 3 (the run has 0)', 'a resumed run keeps its flags']),
    'bare resume matching no run': (['--resume', '--env', 'CartPole-v1', '--alg', 'dqn', '--seed', '7'],
                                    ['no run in', 'matches the flags given', 'name the run']),
}


@pytest.fixture
def workspace(tmp_path, monkeypatch):
    """The test's folder as the cwd, with the bad files the rows name."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv('USE_PYTORCH', raising=False)
    (tmp_path / 'a_file').write_text('not a folder')
    (tmp_path / 'empty.pt').write_bytes(b'')
    (tmp_path / 'random.pt').write_bytes(os.urandom(4096))
    with zipfile.ZipFile(tmp_path / 'other.zip', 'w') as archive:
        archive.writestr('notes.txt', 'a zip archive, but not one torch.save wrote')
    meta = {'format': 1, 'backend': 'torch', 'alg': 'ddpg', 'basis_alg': 'ddpg', 'obs_dims': [17],
            'acts_dims': [6], 'obs_normalization': True, 'dueling': False}
    torch.save({'meta': meta, 'state': {}}, tmp_path / 'ddpg.pt')
    for name, files in (('tf_ckpt', ('meta.json', 'model.index')), ('no_meta', ('model.index',)),
                        ('no_index', ('meta.json',))):
        (tmp_path / name).mkdir()
        for file in files:
            (tmp_path / name / file).write_text('{}')
    run_dir = tmp_path / 'log' / 'models' / 'fake-run'
    run_dir.mkdir(parents=True)
    flags = vars(arguments.get_args(['--env', 'CartPole-v1', '--alg', 'dqn']))
    (run_dir / 'config.json').write_text(json.dumps({key: value for key, value in flags.items()
                                                     if key not in ('env_category', 'discrete')}))
    return tmp_path


def files_under(folder):
    return sorted(os.path.relpath(os.path.join(path, name), folder)
                  for path, _, names in os.walk(folder) for name in names + [''])


def expand(items, tmp):
    return [item.replace('{tmp}', str(tmp)) for item in items]


@pytest.mark.parametrize('name', list(ROWS))
def test_bad_input(name, workspace, monkeypatch, capsys):
    argv, words, *setup = ROWS[name]
    for apply in setup:
        apply(monkeypatch)
    before = files_under(workspace)
    with pytest.raises(SystemExit) as exit_info:
        train.main(['--logdir', str(workspace / 'log'), *expand(argv, workspace)])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2, err
    assert 'Traceback' not in err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith('error: ') and '; ' in lines[0], err
    for word in expand(words, workspace):
        assert word in lines[0], (word, lines[0])
    assert files_under(workspace) == before  # no log folder, no stray file


def test_table_is_long_enough():
    assert len(ROWS) >= 30 and len({tuple(argv) for argv, *_ in ROWS.values()}) == len(ROWS)


@pytest.mark.parametrize('name', ['unknown env', 'tag traversal', 'logdir is a file', 'empty torch checkpoint',
                                  'absurd batch size (TF)'])
def test_bad_input_from_the_command_line(name, workspace):
    """As a user sees it: stderr is the one error line, stdout is empty, exit status 2."""
    argv, words, *_ = ROWS[name]
    before = files_under(workspace)
    env = {key: value for key, value in os.environ.items() if key != 'USE_PYTORCH'}
    result = subprocess.run([sys.executable, os.path.join(ROOT, 'train.py'), '--logdir', str(workspace / 'log'),
                             *expand(argv, workspace)], cwd=workspace, env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith('error: '), result.stderr
    for word in expand(words, workspace):
        assert word in lines[0]
    assert result.stdout == ''
    assert files_under(workspace) == before
