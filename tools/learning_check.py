"""Learning checks kept outside CI: RRD against its basis algorithm on episodic rewards.

Presets:
- `hopper` (issue 2): RRD-SAC vs SAC on episodic-reward Hopper, the paper's default flags.
- `cartpole` (issue 5): RRD-DQN vs DQN on episodic-reward CartPole-v1 (`dqn-dense`, DQN on the
  dense +1 per step, is an optional reference). With episodic rewards CartPole pays nothing until
  the episode ends and then its length T; plain DQN must carry that one reward back through up
  to 500 steps, and as the state does not show how long the pole has been up, a terminal reward
  of T looks like noise. RRD regresses R_ep / T (= 1 here) from random subsets of an episode's
  steps, so its proxy reward approaches the dense one. Atari's DQN defaults are tuned for 50M
  frames, so this preset sets small-but-sufficient ones: an update per 2 env steps, batch 64,
  q_lr 5e-4, a target copy every 500 updates, epsilon 1 -> 0.01 over the first 10k steps.
  Seen while choosing them: train_target 100 also plateaus at ~100; q_lr 1e-3 with
  train_target 20 diverges (Q in the millions) for dense DQN and RRD alike.

Each (config, seed) is its own torch process (tools/runner.py); the table printed at the end
holds the test return per evaluation point, mean over seeds with each seed in brackets.

    python tools/learning_check.py --preset hopper --steps 100000 --seeds 0 1
    python tools/learning_check.py --preset cartpole --configs dqn rrd-dqn dqn-dense
    python tools/learning_check.py --preset hopper --summary-only   # re-print earlier runs
"""
import argparse
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from arguments import ArgumentParser, fail  # noqa: E402
from tools.runner import load_curves, run_parallel  # noqa: E402

PRESETS = {
    'hopper': {
        'env': 'Hopper-v2', 'steps': 100000, 'eval_every': 5000, 'test_rollouts': 5,
        'configs': {'rrd-sac': ['--alg=rrd', '--basis_alg=sac'], 'sac': ['--alg=sac']},
        'default_configs': ['rrd-sac', 'sac'],
        'flags': [],
    },
    'cartpole': {
        'env': 'CartPole-v1', 'steps': 60000, 'eval_every': 2500, 'test_rollouts': 5,
        'configs': {'dqn': ['--alg=dqn'], 'rrd-dqn': ['--alg=rrd', '--basis_alg=dqn'],
                    'dqn-dense': ['--alg=dqn', '--env_type=normal']},
        'default_configs': ['dqn', 'rrd-dqn'],
        'flags': ['--train_batches=50', '--batch_size=64', '--warmup=1000', '--eps_decay=10000',
                  '--buffer_size=100000', '--test_timesteps=500', '--train_target=500', '--q_lr=5e-4'],
    },
}
TIMESTEPS = 100  # env steps per iteration, as in the paper


def run_flags(preset, name, seed, opts):
    return ['--env=' + preset['env'], '--env_type=ep_rews', *preset['flags'], *preset['configs'][name],
            '--use_pytorch=True', f'--seed={seed}', '--epochs=1', f'--cycles={opts.steps // opts.eval_every}',
            f'--iterations={opts.eval_every // TIMESTEPS}', f'--timesteps={TIMESTEPS}',
            f'--test_rollouts={opts.test_rollouts}']


def summary(preset, opts):
    curves = {name: load_curves(opts.logdir, [f'{opts.preset}-{name}-s{seed}' for seed in opts.seeds], preset['env'])
              for name in opts.configs}
    steps = curves[opts.configs[0]][0]
    print(f'{preset["env"]}, episodic rewards (dense for *-dense), test return over {opts.test_rollouts} '
          f'episodes: mean over seeds {opts.seeds} [per seed]')
    print('steps'.rjust(8) + ''.join(name.rjust(32) for name in opts.configs))
    for i, step in enumerate(steps):
        cells = ''.join(f'{returns[:, i].mean():8.1f} [{", ".join(f"{v:.0f}" for v in returns[:, i])}]'.rjust(32)
                        for _, returns in curves.values())
        print(f'{step:8d}{cells}')
    last = max(1, len(steps) // 5)
    print(f'mean test return over the last {last} evaluations: '
          + ', '.join(f'{name} {returns[:, -last:].mean():.1f}' for name, (_, returns) in curves.items()))


def main(argv=None):
    parser = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--preset', choices=list(PRESETS), default='hopper')
    parser.add_argument('--steps', type=int, help='env steps per run (default: the preset\'s)')
    parser.add_argument('--eval_every', type=int, help='env steps per cycle, a multiple of 100')
    parser.add_argument('--test_rollouts', type=int)
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1])
    parser.add_argument('--configs', nargs='+', help='configs of the preset to run (default: all but references)')
    parser.add_argument('--parallel', type=int, default=2)
    parser.add_argument('--logdir', help='default: log/learning_check/<preset>')
    parser.add_argument('--summary-only', action='store_true')
    opts = parser.parse_args(argv)
    preset = PRESETS[opts.preset]
    for key in ('steps', 'eval_every', 'test_rollouts'):
        if getattr(opts, key) is None:
            setattr(opts, key, preset[key])
    if opts.eval_every <= 0 or opts.eval_every % TIMESTEPS or opts.steps <= 0 or opts.steps % opts.eval_every:
        parser.error(f'--eval_every {opts.eval_every} must be a positive multiple of {TIMESTEPS} (env steps per '
                     f'iteration) and --steps {opts.steps} a positive multiple of it')
    opts.configs = opts.configs or preset['default_configs']
    unknown = set(opts.configs) - set(preset['configs'])
    if unknown:
        parser.error(f'unknown config(s) {sorted(unknown)} for preset {opts.preset}; choose from {list(preset["configs"])}')
    opts.logdir = opts.logdir or os.path.join(ROOT, 'log', 'learning_check', opts.preset)
    if not opts.summary_only:
        run_parallel({f'{opts.preset}-{name}-s{seed}': run_flags(preset, name, seed, opts)
                      for seed in opts.seeds for name in opts.configs}, opts.logdir, opts.parallel)
    try:
        summary(preset, opts)
    except FileNotFoundError as error:
        fail(f'{error}; run without --summary-only first (or pass the --logdir it used)')


if __name__ == '__main__':
    main()
