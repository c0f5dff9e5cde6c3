"""Learning check kept outside CI: RRD-DQN vs DQN on CartPole-v1 with episodic rewards (issue 5).

With `--env_type=ep_rews` CartPole pays nothing until the episode ends and then its length T.
Plain DQN must propagate that one reward back through up to 500 steps, and since the state does
not show how long the pole has been up, a terminal reward of T looks like noise (ending the
episode is even rewarded). RRD regresses R_ep / T (= 1 on CartPole) from random subsets of
each episode's steps, so its proxy reward should approach the dense +1 per step and DQN on it
should learn like DQN on dense rewards.

Runs `train.py` for each (config, seed) as separate processes, `--parallel` at a time with one
torch thread each, then prints the test return per evaluation point from the npz files.

    python tools/cartpole_check.py                     # dqn and rrd-dqn, 60k steps, seeds 0 1
    python tools/cartpole_check.py --configs dqn-dense # the dense-reward reference
    python tools/cartpole_check.py --summary-only --configs dqn rrd-dqn dqn-dense

Sensitivity seen while choosing the settings: train_target 100 (q_lr 5e-4) plateaus at ~100 as
well; q_lr 1e-3 with train_target 20 diverges (Q in the millions) for dense DQN and RRD alike.
"""
import argparse
import os
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = {
    'dqn': ['--alg=dqn'],
    'rrd-dqn': ['--alg=rrd', '--basis_alg=dqn'],
    # reference, not run by default: DQN on the dense +1 per step reward
    'dqn-dense': ['--alg=dqn', '--env_type=normal'],
}
DEFAULT_CONFIGS = ['dqn', 'rrd-dqn']
# Small-but-sufficient DQN settings for CartPole (Atari's defaults are tuned for 50M frames):
# one update per 2 env steps, batch 64, lr 5e-4, target copy every 500 updates, epsilon 1 -> 0.01
# over the first 10k steps. RRD keeps its defaults (r_lr 3e-4, 256 transitions = 4 episodes x 64).
SETTINGS = ['--env=CartPole-v1', '--env_type=ep_rews', '--timesteps=100', '--train_batches=50',
            '--batch_size=64', '--warmup=1000', '--eps_decay=10000',
            '--buffer_size=100000', '--test_timesteps=500']


def command(name, seed, opts):
    iterations = opts.eval_every // 100
    cycles = opts.steps // opts.eval_every
    return [sys.executable, os.path.join(ROOT, 'train.py'), *SETTINGS, *CONFIGS[name],
            f'--train_target={opts.train_target}', f'--q_lr={opts.q_lr}', '--use_pytorch=True', '--cuda=False', f'--seed={seed}', f'--tag=cartpole-{name}-s{seed}',
            '--epochs=1', f'--cycles={cycles}', f'--iterations={iterations}',
            f'--test_rollouts={opts.test_rollouts}', f'--logdir={opts.logdir}']


def run_all(opts):
    env = dict(os.environ, OMP_NUM_THREADS='1', MKL_NUM_THREADS='1', USE_PYTORCH='1')
    jobs = [(name, seed) for seed in opts.seeds for name in opts.configs]
    os.makedirs(opts.logdir, exist_ok=True)
    running, started = [], time.time()
    for name, seed in jobs:
        log = open(os.path.join(opts.logdir, f'cartpole-{name}-s{seed}.out'), 'w')
        running.append(subprocess.Popen(command(name, seed, opts), stdout=log, stderr=subprocess.STDOUT, env=env))
        while len([p for p in running if p.poll() is None]) >= opts.parallel:
            running[[p.poll() for p in running].index(None)].wait()
    for proc in running:
        proc.wait()
    print(f'{len(jobs)} runs in {time.time() - started:.0f} s wall')
    failed = [p.args for p in running if p.returncode]
    if failed:
        sys.exit(f'{len(failed)} run(s) failed; see the .out files in {opts.logdir}')


def summary(opts):
    curves = {}
    for name in opts.configs:
        runs = [np.load(os.path.join(opts.logdir, 'rews', f'cartpole-{name}-s{seed}', 'CartPole-v1.npz'))
                for seed in opts.seeds]
        curves[name] = (runs[0]['steps'], np.stack([r['rewards'] for r in runs]))
    steps = curves[opts.configs[0]][0]
    print(f'CartPole-v1, episodic rewards (dqn-dense: dense), greedy test return over {opts.test_rollouts} episodes '
          f'(max 500): mean over seeds {opts.seeds} [per seed]')
    print('steps'.rjust(8) + ''.join(name.rjust(30) for name in opts.configs))
    for i, step in enumerate(steps):
        cells = ''.join(f'{c[1][:, i].mean():8.1f} [{", ".join(f"{v:.0f}" for v in c[1][:, i])}]'.rjust(30)
                        for c in curves.values())
        print(f'{step:8d}{cells}')
    last = max(1, len(steps) // 4)  # the final quarter of the evaluation points
    print('mean of the last quarter of evaluations: '
          + ', '.join(f'{name} {c[1][:, -last:].mean():.1f}' for name, c in curves.items()))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--steps', type=int, default=60000, help='env steps per run')
    parser.add_argument('--eval_every', type=int, default=2500, help='env steps per cycle (multiple of 100)')
    parser.add_argument('--test_rollouts', type=int, default=5)
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1])
    parser.add_argument('--configs', nargs='+', default=DEFAULT_CONFIGS, choices=list(CONFIGS))
    parser.add_argument('--train_target', type=int, default=500, help='updates between target copies')
    parser.add_argument('--q_lr', type=float, default=5e-4, help='Q-network learning rate')
    parser.add_argument('--parallel', type=int, default=2)
    parser.add_argument('--logdir', default=os.path.join(ROOT, 'log', 'cartpole_check'))
    parser.add_argument('--summary-only', action='store_true')
    opts = parser.parse_args()
    if not opts.summary_only:
        run_all(opts)
    summary(opts)


if __name__ == '__main__':
    main()
