"""Learning check kept outside CI: RRD-SAC vs SAC on episodic-reward Hopper (issue 2).

Runs `train.py` for each (config, seed) as separate processes, `--parallel` at a time with one
torch thread each, then prints the test-return curve per config from the npz files it wrote.

    python tools/learning_check.py --steps 100000 --seeds 0 1 --parallel 2
    python tools/learning_check.py --summary-only      # re-print from earlier runs
"""
import argparse
import os
import subprocess
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = {
    'rrd-sac': ['--alg=rrd', '--basis_alg=sac'],
    'sac': ['--alg=sac'],
}


def command(name, seed, opts):
    iterations, timesteps = 50, 100
    cycles = opts.steps // (iterations * timesteps)
    return [sys.executable, os.path.join(ROOT, 'train.py'), *CONFIGS[name], f'--env={opts.env}',
            '--env_type=ep_rews', '--use_pytorch=True', f'--seed={seed}', f'--tag=check-{name}-s{seed}',
            '--epochs=1', f'--cycles={cycles}', f'--iterations={iterations}', f'--timesteps={timesteps}',
            f'--test_rollouts={opts.test_rollouts}', f'--logdir={opts.logdir}']


def run_all(opts):
    env = dict(os.environ, OMP_NUM_THREADS='1', MKL_NUM_THREADS='1')
    jobs = [(name, seed) for name in opts.configs for seed in opts.seeds]
    os.makedirs(opts.logdir, exist_ok=True)
    running = []
    for name, seed in jobs:
        log = open(os.path.join(opts.logdir, f'check-{name}-s{seed}.out'), 'w')
        running.append(subprocess.Popen(command(name, seed, opts), stdout=log, stderr=subprocess.STDOUT, env=env))
        while len([p for p in running if p.poll() is None]) >= opts.parallel:
            running[[p.poll() for p in running].index(None)].wait()
    for proc in running:
        proc.wait()
    failed = [p.args for p in running if p.returncode]
    if failed:
        sys.exit(f'{len(failed)} run(s) failed; see the .out files in {opts.logdir}')


def summary(opts):
    curves = {}
    for name in opts.configs:
        runs = [np.load(os.path.join(opts.logdir, 'rews', f'check-{name}-s{seed}', f'{opts.env}.npz'))
                for seed in opts.seeds]
        curves[name] = (runs[0]['steps'], np.stack([r['rewards'] for r in runs]))
    steps = curves[opts.configs[0]][0]
    print(f'{opts.env}, episodic rewards, test return (mean over seeds {opts.seeds}; per-seed in brackets)')
    print('steps'.rjust(8) + ''.join(name.rjust(36) for name in opts.configs))
    for i, step in enumerate(steps):
        cells = ''.join(f'{c[1][:, i].mean():10.1f} [{", ".join(f"{v:.0f}" for v in c[1][:, i])}]'.rjust(36)
                        for c in curves.values())
        print(f'{step:8d}{cells}')
    last = max(1, len(steps) // 5)  # the final fifth of the evaluations
    for name, (_, rewards) in curves.items():
        print(f'{name}: mean test return over the last {last} evaluations = {rewards[:, -last:].mean():.1f}')


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--env', default='Hopper-v2')
    parser.add_argument('--steps', type=int, default=100000)
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1])
    parser.add_argument('--configs', nargs='+', default=list(CONFIGS), choices=list(CONFIGS))
    parser.add_argument('--test_rollouts', type=int, default=5)
    parser.add_argument('--parallel', type=int, default=2)
    parser.add_argument('--logdir', default=os.path.join(ROOT, 'log', 'learning_check'))
    parser.add_argument('--summary-only', action='store_true')
    opts = parser.parse_args()
    if not opts.summary_only:
        run_all(opts)
    summary(opts)


if __name__ == '__main__':
    main()
