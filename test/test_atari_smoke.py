"""Smoke runs of `train.main` with tiny settings: dqn, ircr (over dqn) and rrd (over dqn) on an
Atari game (Pong, the real emulator) and on CartPole-v1, on the torch backend and, where the TF
agents exist and tensorflow imports, on TF.

Each run must go through warmup into training (the losses appear in the cycle's CSV row, epsilon
is reported), run its test rollout and save the test-return npz.
"""
import csv
import glob
import importlib.util
import os

import numpy as np
import pytest

import train

COMMON = ['--epochs=1', '--cycles=1', '--iterations=3', '--timesteps=50', '--warmup=100', '--train_batches=2',
          '--train_target=2', '--eps_decay=100', '--batch_size=8', '--buffer_size=2000', '--test_rollouts=1']
ENVS = {
    # Pong episodes are capped at 60 steps, so 120 are stored (warm) before iteration 3
    'Pong': ['--test_timesteps=60', '--noop=5'],
    'CartPole-v1': ['--test_timesteps=200'],
}
ALGS = {
    'dqn': ['--alg=dqn'],
    'ircr': ['--alg=ircr', '--basis_alg=dqn'],
    'rrd': ['--alg=rrd', '--basis_alg=dqn', '--rrd_batch_size=8', '--rrd_sample_size=4'],
}


def tf_available(alg):
    """The TF reference agents are optional: skip unless their modules exist and TF imports."""
    modules = ['algorithm/basis_alg/dqn.py'] + (['algorithm/rrd.py'] if alg == 'rrd' else [])
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    missing = [m for m in modules if not os.path.exists(os.path.join(root, m))]
    if missing:
        pytest.skip(f'TF agent not written yet: {", ".join(missing)}')
    if importlib.util.find_spec('tensorflow') is None:
        pytest.skip('tensorflow is not installed')


@pytest.mark.parametrize('backend', ['torch', 'tf'])
@pytest.mark.parametrize('env', list(ENVS))
@pytest.mark.parametrize('alg', list(ALGS))
def test_smoke(tmp_path, alg, env, backend):
    if backend == 'tf':
        tf_available(alg)
    else:
        pytest.importorskip('torch')
    argv = [f'--env={env}', *ALGS[alg], *COMMON, *ENVS[env], f'--use_pytorch={backend == "torch"}',
            '--cuda=False', f'--logdir={tmp_path}', f'--tag=smoke-{alg}', '--seed=1']
    tester = train.main(argv)

    # evaluation points are counted in env steps: 3 iterations of 50
    assert tester.steps == [150] and len(tester.returns) == 1 and np.isfinite(tester.returns[0])
    steps = 150
    if env == 'CartPole-v1':
        assert 1 <= tester.returns[0] <= 200  # +1 per step, at most the cap
    else:
        assert -21 <= tester.returns[0] <= 21
    (npz,) = glob.glob(str(tmp_path / 'rews' / f'smoke-{alg}' / '*' / f'{env}.npz'))
    npz = np.load(npz)
    assert npz['steps'].tolist() == [steps] and npz['rewards'].tolist() == pytest.approx(tester.returns)

    (csv_path,) = glob.glob(str(tmp_path / 'csv' / '*.csv'))
    with open(csv_path) as f:
        (row,) = list(csv.DictReader(f))
    assert float(row['Steps']) == steps
    assert np.isfinite(float(row['losses/Q_loss']))  # updates ran after the warmup
    if alg == 'rrd':
        assert np.isfinite(float(row['losses/R_loss']))
    # the warmup ends when the stored episodes reach 100 steps; epsilon then decays from 1 to
    # 0.01 over 100 env steps, and at the cycle's end 150 steps have been taken
    assert float(row['charts/Epsilon']) == pytest.approx(0.01)
    assert np.isfinite(float(row['charts/TestRewards']))
