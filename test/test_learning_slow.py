"""Learning checks (minutes each, excluded from CI; `python3 -m pytest -q -m slow` runs them): RRD
learns from episodic rewards, which pay the episode's return at its last step and nothing before.

- RRD-DQN on CartPole-v1 with the settings of `tools/learning_check.py --preset cartpole`, where
  it reaches a test return of ~100-230 after 5k-10k env steps (seeds 0 and 1,
  docs/results/learning_check_cartpole.txt) from ~10-20 at the first evaluation.
- RRD-SAC on Pendulum-v1 (200-step episodes): from about -1470 at the first evaluation to about
  -150 from 6k env steps on (seed 0: -1467, -995, -230, -149, -150, -166 per 2000 steps).
"""
import csv
import glob
import os

import pytest

import train

pytestmark = pytest.mark.slow


def train_returns(logdir, flags):
    """Train on the torch backend and return the test return of every cycle."""
    train.main(['--use_pytorch=True', '--cuda=False', '--env_type=ep_rews', '--seed=0', '--epochs=1',
                '--timesteps=100', '--logdir', str(logdir), *flags])
    (path,) = glob.glob(os.path.join(logdir, 'csv', '*.csv'))
    with open(path, newline='') as file:
        return [float(row['charts/TestRewards']) for row in csv.DictReader(file)]


def test_rrd_dqn_learns_episodic_cartpole(tmp_path):
    returns = train_returns(tmp_path, [
        '--env=CartPole-v1', '--alg=rrd', '--basis_alg=dqn', '--cycles=4', '--iterations=25', '--test_rollouts=5',
        '--train_batches=50', '--batch_size=64', '--warmup=1000', '--eps_decay=10000', '--buffer_size=100000',
        '--test_timesteps=500', '--train_target=500', '--q_lr=5e-4'])
    print('test returns per 2500 env steps:', returns)
    assert returns[0] < 50 and min(returns[-2:]) >= 80, returns


def test_rrd_sac_learns_episodic_pendulum(tmp_path):
    returns = train_returns(tmp_path, [
        '--env=Pendulum-v1', '--alg=rrd', '--basis_alg=sac', '--cycles=6', '--iterations=20', '--test_rollouts=5',
        '--test_timesteps=200', '--warmup=1000', '--buffer_size=100000', '--train_batches=50', '--batch_size=128',
        '--rrd_batch_size=128', '--rrd_sample_size=32'])
    print('test returns per 2000 env steps:', returns)
    assert returns[0] < -900 and min(returns[-3:]) > -500, returns
