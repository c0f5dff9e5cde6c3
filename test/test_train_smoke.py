"""Smoke runs of train.py (project issues #2 and #3): every algorithm trains for a few updates on
a tiny config on each backend and writes its logs; seeding; checkpoints; clear CLI errors."""
import csv
import glob
import importlib.util
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import torch

import train

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Small nets: one thread is fastest, and on a busy machine extra OpenMP threads only spin.

TINY = ['--epochs=1', '--cycles=1', '--iterations=3', '--timesteps=50',
        '--warmup=100', '--batch_size=32', '--test_rollouts=1', '--test_timesteps=50', '--buffer_size=2000',
        '--train_batches=4']
RRD = ['--rrd_batch_size=32', '--rrd_sample_size=8']
# Swimmer: a MuJoCo env whose model compiles without warnings, so no MUJOCO_LOG.TXT lands in the cwd.
MUJOCO = ['--env=Swimmer-v2']
CARTPOLE = ['--env=CartPole-v1', '--train_target=2']
BACKENDS = {'torch': ['--use_pytorch=True', '--cuda=False'], 'tf': ['--use_pytorch=False']}
BACKEND_PARAMS = ['torch', pytest.param('tf', marks=pytest.mark.skipif(
    importlib.util.find_spec('tensorflow') is None, reason='TensorFlow is not installed'))]
BASE_COLUMNS = ['Epoch', 'Cycle', 'Episodes', 'Steps', 'time/steps_per_sec', 'time/time_left', 'charts/TestRewards']


@pytest.fixture(autouse=True)
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # anything written relative to the cwd lands in the test's folder
    monkeypatch.delenv('USE_PYTORCH', raising=False)


def run(logdir, *flags, backend='torch'):
    train.main([*TINY, *BACKENDS[backend], '--logdir', str(logdir), *flags])
    (csv_path,) = glob.glob(os.path.join(logdir, 'csv', '*.csv'))
    with open(csv_path, newline='') as f:
        header, *rows = list(csv.reader(f))
    return header, rows


def run_files(logdir):
    return {kind: sorted(glob.glob(os.path.join(logdir, pattern), recursive=True))
            for kind, pattern in (('csv', 'csv/*.csv'), ('text', 'text/*.log'),
                                  ('board', 'board/*/events.out.tfevents.*'), ('npz', 'rews/**/*.npz'))}


CASES = {
    'ddpg': (MUJOCO + ['--alg=ddpg'], ['Pi_loss', 'Q_loss', 'Q_reg_loss'], ['Q_average']),
    'td3': (MUJOCO + ['--alg=td3'], ['Pi_loss', 'Q_loss'], ['Q_average']),
    'sac': (MUJOCO + ['--alg=sac'], ['Pi_loss', 'Q_loss', 'Alpha'], ['Q_average', 'Pi_step_std']),
    'ircr-sac': (MUJOCO + ['--alg=ircr', '--basis_alg=sac'], ['Pi_loss', 'Q_loss', 'Alpha'],
                 ['Q_average', 'Pi_step_std']),
    'rrd-sac': (MUJOCO + ['--alg=rrd', '--basis_alg=sac'] + RRD, ['Pi_loss', 'Q_loss', 'Alpha', 'R_loss'],
                ['Q_average', 'Pi_step_std']),
    'rrd-sac-bc': (MUJOCO + ['--alg=rrd', '--basis_alg=sac', '--rrd_bias_correction=True'] + RRD,
                   ['Pi_loss', 'Q_loss', 'Alpha', 'R_loss', 'R_var'], ['Q_average', 'Pi_step_std']),
    'rrd-td3': (MUJOCO + ['--alg=rrd', '--basis_alg=td3'] + RRD, ['Pi_loss', 'Q_loss', 'R_loss'], ['Q_average']),
    'rrd-td3-bc': (MUJOCO + ['--alg=rrd', '--basis_alg=td3', '--rrd_bias_correction=True'] + RRD,
                   ['Pi_loss', 'Q_loss', 'R_loss', 'R_var'], ['Q_average']),
    'rrd-ddpg': (MUJOCO + ['--alg=rrd', '--basis_alg=ddpg'] + RRD, ['Pi_loss', 'Q_loss', 'Q_reg_loss', 'R_loss'],
                 ['Q_average']),
    'rrd-ddpg-bc': (MUJOCO + ['--alg=rrd', '--basis_alg=ddpg', '--rrd_bias_correction=True'] + RRD,
                    ['Pi_loss', 'Q_loss', 'Q_reg_loss', 'R_loss', 'R_var'], ['Q_average']),
    'dqn': (CARTPOLE + ['--alg=dqn'], ['Q_loss'], ['Q_average']),
    'rrd-dqn': (CARTPOLE + ['--alg=rrd', '--basis_alg=dqn'] + RRD, ['Q_loss', 'R_loss'], ['Q_average']),
}


@pytest.mark.parametrize('backend', BACKEND_PARAMS)
@pytest.mark.parametrize('case', list(CASES))
def test_smoke_run(tmp_path, case, backend):
    flags, losses, charts = CASES[case]
    logdir = tmp_path / 'log'
    header, rows = run(logdir, *flags, '--tag=smoke', backend=backend)
    discrete = 'CartPole-v1' in flags[0]
    assert header == BASE_COLUMNS + ['losses/' + k for k in losses] + ['charts/' + k for k in charts] \
        + (['charts/Epsilon'] if discrete else []) \
        + (['charts/ProxyCorr', 'charts/DecompError'] if case.startswith('rrd') else [])
    assert len(rows) == 1
    row = dict(zip(header, rows[0]))
    assert (row['Epoch'], row['Cycle']) == ('0', '0')
    steps = int(row['Steps'])  # steps of finished episodes: Swimmer's are capped at 50
    assert steps == 150 if not discrete else 100 <= steps <= 150
    for key in ['charts/TestRewards'] + ['losses/' + k for k in losses] + ['charts/' + k for k in charts]:
        assert np.isfinite(float(row[key])), (key, row)  # every loss was recorded: training ran

    files = run_files(logdir)
    assert all(len(found) == 1 for found in files.values()), files
    env = 'CartPole-v1' if discrete else 'Swimmer-v2'
    (name,) = os.listdir(logdir / 'models')
    assert files['npz'] == [str(logdir / 'rews' / 'smoke' / name / f'{env}.npz')]
    with np.load(files['npz'][0]) as npz:
        assert npz['steps'].tolist() == [steps]
        assert npz['rewards'].shape == (1,) and npz['rewards'][0] == pytest.approx(float(row['charts/TestRewards']))
    assert os.path.getsize(files['board'][0]) > 0
    assert os.listdir(tmp_path) == ['log']  # nothing stray in the cwd (e.g. MUJOCO_LOG.TXT)


def test_original_release_tags(tmp_path):
    """The migration guide's command line parses unchanged, and a tag with a space (the original
    release's habit) names the rews folder as given; the run name gets '_' in its place."""
    from arguments import get_args
    from tools.runs import read_run
    args = get_args(['--tag=RRD Ant-v2', '--alg=rrd', '--basis_alg=sac', '--env=Ant-v2'])
    assert (args.tag, args.alg, args.basis_alg, args.env) == ('RRD Ant-v2', 'rrd', 'sac', 'Ant-v2')

    logdir = tmp_path / 'log'
    run(logdir, *MUJOCO, '--alg=sac', '--tag=SAC Swimmer-v2', '--seed=4')
    (name,) = os.listdir(logdir / 'models')
    assert name.startswith('SAC_Swimmer-v2-Swimmer-v2-sac-torch-seed4-')
    (npz,) = run_files(logdir)['npz']
    assert npz == str(logdir / 'rews' / 'SAC Swimmer-v2' / name / 'Swimmer-v2.npz')
    meta = read_run(npz).meta
    assert (meta['tag'], meta['run'], meta['alg'], meta['seed']) == ('SAC Swimmer-v2', name, 'sac', 4)


def without_time(header, rows):
    keep = [i for i, key in enumerate(header) if not key.startswith('time/')]
    return [[row[i] for i in keep] for row in rows]


def test_seeded_runs_are_identical(tmp_path):
    flags = MUJOCO + ['--alg=rrd', '--basis_alg=sac', '--rrd_bias_correction=True'] + RRD
    first = run(tmp_path / 'a', *flags, '--seed=3')
    second = run(tmp_path / 'b', *flags, '--seed=3')
    other = run(tmp_path / 'c', *flags, '--seed=4')
    assert first[0] == second[0] and 'losses/R_loss' in first[0]
    assert without_time(*first) == without_time(*second)
    assert without_time(*first) != without_time(*other)


@pytest.mark.parametrize('flags', [MUJOCO + ['--alg=rrd', '--basis_alg=sac'] + RRD,
                                   CARTPOLE + ['--alg=rrd', '--basis_alg=dqn'] + RRD], ids=['rrd-sac', 'rrd-dqn'])
def test_buffer_on_device_trains_exactly_as_the_host_buffer(tmp_path, flags, monkeypatch):
    """--buffer_on_device gathers the same batches on the device (CPU here): same run, row for row."""
    from algorithm.replay_buffer.device_ring_torch import DeviceRing
    gathers, gather = [], DeviceRing.gather
    monkeypatch.setattr(DeviceRing, 'gather', lambda self, *args: gathers.append(args[0]) or gather(self, *args))
    host = run(tmp_path / 'host', *flags, '--seed=5')
    assert not gathers
    device = run(tmp_path / 'device', *flags, '--seed=5', '--buffer_on_device=True')
    assert {'frames', 'acts', 'rews', 'done'} <= set(gathers)  # the batches came from the device ring
    assert without_time(*host) == without_time(*device)


def test_save_and_load_model(tmp_path):
    flags = MUJOCO + ['--alg=sac', '--save_model=True']
    header, rows = run(tmp_path / 'a', *flags)
    (saved,) = glob.glob(str(tmp_path / 'a' / 'models' / '*' / 'epoch0.pt'))
    assert not glob.glob(str(tmp_path / 'a' / 'models' / '*' / '.tmp*'))
    # Start from it with no training (warmup never reached): the test policy is the saved one,
    # so the deterministic test episode repeats, and the re-saved state is the loaded one.
    header2, rows2 = run(tmp_path / 'b', *flags, f'--load_model={saved}', '--warmup=2000', '--iterations=1')
    (resaved,) = glob.glob(str(tmp_path / 'b' / 'models' / '*' / 'epoch0.pt'))
    test_rewards = header.index('charts/TestRewards')
    assert rows2[0][test_rewards] == rows[0][test_rewards]
    assert rows2[0][header2.index('losses/Q_loss')] == ''  # no update happened in the second run
    a, b = torch.load(saved, weights_only=True), torch.load(resaved, weights_only=True)
    assert a['meta'] == b['meta']
    for name in ('pi', 'q1', 'q2', 'q1_target', 'q2_target', 'temperature'):
        assert a['state'][name].keys() == b['state'][name].keys()
        assert all(torch.equal(a['state'][name][k], b['state'][name][k]) for k in a['state'][name])
    assert a['state']['q_optimizer']['state'][0]['step'] > 0
    # a fresh run without --load_model tests a different (untrained, differently seeded) policy
    header3, rows3 = run(tmp_path / 'c', *flags, '--warmup=2000', '--iterations=1', '--seed=1')
    assert rows3[0][header3.index('charts/TestRewards')] != rows[0][test_rewards]


# ---- command-line errors --------------------------------------------------------------------------------
def cli(tmp_path, *argv):
    env = dict(os.environ)
    env.pop('USE_PYTORCH', None)
    return subprocess.run([sys.executable, os.path.join(ROOT, 'train.py'), *argv], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)


def error_line(result):
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert 'Traceback' not in output, output
    lines = [line for line in output.splitlines() if 'error' in line.lower()]
    assert len(lines) == 1, output
    return lines[0]


CLI_ERRORS = {
    'unknown env': (['--env=Nope-v0'], "unknown --env 'Nope-v0'"),
    'unknown alg': (['--alg=ppo'], "argument --alg: invalid choice: 'ppo'"),
    'dqn on mujoco': (['--env=HalfCheetah-v2', '--alg=dqn'], 'dqn needs a discrete action space'),
    'sac on discrete': (['--env=CartPole-v1', '--alg=sac'], 'sac needs a continuous action space'),
    'K > rrd batch': (['--env=Swimmer-v2', '--rrd_batch_size=8', '--rrd_sample_size=16'],
                      r'--rrd_sample_size \(16\) must not exceed --rrd_batch_size \(8\)'),
    'bias correction K=1': (['--env=Swimmer-v2', '--rrd_bias_correction=True', '--rrd_sample_size=1'],
                            'needs --rrd_sample_size > 1'),
    'non-boolean': (['--env=Swimmer-v2', '--save_model=maybe'], "argument --save_model: expected a boolean"),
}


@pytest.mark.parametrize('case', list(CLI_ERRORS))
def test_cli_errors(tmp_path, case):
    argv, message = CLI_ERRORS[case]
    result = cli(tmp_path, *argv)
    assert result.returncode == 2
    line = error_line(result)
    assert re.search(message, line), line


@pytest.mark.skipif(torch.cuda.is_available(), reason='needs a machine without CUDA')
def test_cli_cuda_without_gpu(tmp_path):
    line = error_line(cli(tmp_path, '--env=Swimmer-v2', '--alg=sac', '--use_pytorch=True', '--cuda=True'))
    assert 'CUDA is not available' in line


def test_cli_corrupt_checkpoint(tmp_path):
    corrupt = tmp_path / 'corrupt.pt'
    corrupt.write_bytes(b'\x00garbage' * 100)
    result = cli(tmp_path, *TINY, *BACKENDS['torch'], *MUJOCO, '--alg=sac', f'--load_model={corrupt}')
    assert result.returncode == 2  # bad input, found before anything is written
    line = error_line(result)
    assert line.startswith('error: ') and 'corrupt.pt is not a readable torch checkpoint' in line


def test_cli_checkpoint_of_another_algorithm(tmp_path):
    from algorithm import create_agent
    from arguments import get_args
    args = get_args(['--env=Swimmer-v2', '--alg=td3', '--use_pytorch=True', '--cuda=False'])
    args.obs_dims, args.acts_dims = [8], [2]  # Swimmer's
    path = str(tmp_path / 'td3.pt')
    create_agent(args).save_model(path)
    line = error_line(cli(tmp_path, *TINY, *BACKENDS['torch'], *MUJOCO, '--alg=sac', f'--load_model={path}'))
    assert "alg: checkpoint has 'td3', this run has 'sac'" in line


@pytest.mark.parametrize('backend', BACKEND_PARAMS[1:])
def test_tf_save_and_load_model(tmp_path, backend):
    flags = MUJOCO + ['--alg=sac', '--save_model=True']
    header, rows = run(tmp_path / 'a', *flags, backend=backend)
    (saved,) = glob.glob(str(tmp_path / 'a' / 'models' / '*' / 'epoch0'))
    assert os.path.isdir(saved) and not glob.glob(str(tmp_path / 'a' / 'models' / '*' / '.tmp*'))
    # no update in the second run (warmup never reached): the deterministic test episode repeats
    header2, rows2 = run(tmp_path / 'b', *flags, f'--load_model={saved}', '--warmup=2000', '--iterations=1',
                         backend=backend)
    test_rewards = header.index('charts/TestRewards')
    assert rows2[0][test_rewards] == rows[0][test_rewards]
    assert rows2[0][header2.index('losses/Q_loss')] == ''
