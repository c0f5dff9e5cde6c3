"""Smoke runs of train.py on the TensorFlow backend (project issue #3): each algorithm trains for a
few updates on a tiny config and records finite losses; a checkpoint saved by one run loads in
the next."""
import csv
import glob
import os

import numpy as np
import pytest

pytest.importorskip('tensorflow')

import train  # noqa: E402

TINY = ['--use_pytorch=False', '--epochs=1', '--cycles=1', '--iterations=3', '--timesteps=50', '--warmup=100',
        '--batch_size=32', '--test_rollouts=1', '--test_timesteps=50', '--buffer_size=2000', '--train_batches=4']
RRD = ['--rrd_batch_size=32', '--rrd_sample_size=8']
MUJOCO = ['--env=Swimmer-v2']
CARTPOLE = ['--env=CartPole-v1', '--train_target=2']

CASES = {
    'ddpg': MUJOCO + ['--alg=ddpg'],
    'td3': MUJOCO + ['--alg=td3'],
    'sac': MUJOCO + ['--alg=sac'],
    'ircr-sac': MUJOCO + ['--alg=ircr', '--basis_alg=sac'],
    'rrd-sac': MUJOCO + ['--alg=rrd', '--basis_alg=sac', '--rrd_bias_correction=True'] + RRD,
    'rrd-td3': MUJOCO + ['--alg=rrd', '--basis_alg=td3'] + RRD,
    'dqn': CARTPOLE + ['--alg=dqn'],
    'rrd-dqn': CARTPOLE + ['--alg=rrd', '--basis_alg=dqn'] + RRD,
}


@pytest.fixture(autouse=True)
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # anything written relative to the cwd lands in the test's folder
    monkeypatch.delenv('USE_PYTORCH', raising=False)


def run(logdir, *flags):
    """One tiny training run; returns its single csv row as a dict."""
    train.main([*TINY, '--logdir', str(logdir), *flags])
    (csv_path,) = glob.glob(os.path.join(logdir, 'csv', '*.csv'))
    with open(csv_path, newline='') as file:
        header, *rows = list(csv.reader(file))
    assert len(rows) == 1
    return dict(zip(header, rows[0]))


@pytest.mark.parametrize('case', list(CASES))
def test_smoke_run(tmp_path, case):
    row = run(tmp_path / 'log', *CASES[case])
    losses = [key for key in row if key.startswith('losses/')]
    assert 'losses/Q_loss' in losses and ('losses/R_loss' in losses) == case.startswith('rrd')
    for key in ['charts/TestRewards', 'charts/Q_average'] + losses:
        assert np.isfinite(float(row[key])), (key, row)  # every loss was recorded: training ran


def test_save_and_load_model(tmp_path):
    flags = MUJOCO + ['--alg=sac', '--save_model=True']
    first = run(tmp_path / 'a', *flags)
    (saved,) = glob.glob(str(tmp_path / 'a' / 'models' / '*' / 'epoch0'))
    assert os.path.isdir(saved) and not glob.glob(str(tmp_path / 'a' / 'models' / '*' / '.tmp*'))
    # no update in the second run (warmup never reached): the deterministic test episode repeats
    second = run(tmp_path / 'b', *flags, f'--load_model={saved}', '--warmup=2000', '--iterations=1')
    assert second['charts/TestRewards'] == first['charts/TestRewards']
    assert second['losses/Q_loss'] == ''
