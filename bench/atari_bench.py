"""Atari learner throughput: env steps per second with DQN (or RRD-DQN) updates, PyTorch vs TensorFlow.

The real learner loop (`learner.Learner.iterate`) on a real game: `--timesteps` (100) exploring
env steps, then `--train_batches` (25) DQN updates of batch 32, i.e. one update per 4 env steps,
as with the Atari defaults. Each backend gets its own env, buffer and agent; both are first
filled past `--warmup` with random actions (untimed), then timed in alternating rounds of
`--round` iterations, so load from other processes on the machine hits both alike.
Prints steps/s per backend and where the time goes (env + acting vs sampling + updates).

    OMP_NUM_THREADS=1 python bench/atari_bench.py [--alg dqn|rrd] [--iterations 30] [--backends torch tf] [--threads 1] [--buffer_on_device]
"""
import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class NullLogger:
    def add_dict(self, info, prefix='', count=1):
        for value in info.values():
            float(value)  # read every loss back, as the real logger does on the CPU

    def add_record(self, key, value, count=1):
        pass


class TimedLearner:
    """The learner of one backend (built from CLI flags `argv`), with the env-step and update
    phases timed apart."""

    def __init__(self, backend, argv, threads):
        from algorithm import create_agent
        from algorithm.replay_buffer import create_buffer
        from arguments import get_args
        from envs import make_env
        from learner import Learner
        from train import describe_env

        args = get_args(argv + [f'--use_pytorch={backend == "torch"}', '--cuda=False', '--seed=0',
                                f'--threads={threads}'])
        env = make_env(args)
        describe_env(args, env)
        np.random.seed(0)
        if backend == 'torch':
            import torch
            torch.manual_seed(0)
        self.backend, self.args = backend, args
        self.label = backend + (' --buffer_on_device' if args.buffer_on_device else '')
        agent, buffer = create_agent(args), create_buffer(args)
        if args.buffer_on_device:  # as train.py does
            buffer.keep_on_device(agent.device)
        self.learner = Learner(args, env, agent, buffer, NullLogger())
        self.env_time = self.train_time = 0.0
        self.steps = self.updates = 0

    def warm_up(self):
        while not self.learner.warm:
            for _ in range(self.args.timesteps):
                self.learner.env_step()

    def iterate(self, count):
        learner = self.learner
        for _ in range(count):
            start = time.perf_counter()
            for _ in range(self.args.timesteps):
                learner.env_step()
            middle = time.perf_counter()
            for _ in range(self.args.train_batches):
                learner.train_step()
            end = time.perf_counter()
            self.env_time += middle - start
            self.train_time += end - middle
            self.steps += self.args.timesteps
            self.updates += self.args.train_batches

    def report(self):
        total = self.env_time + self.train_time
        return (f'{self.label:>5}  {self.steps / total:8.1f} env steps/s   '
                f'env+acting {1e3 * self.env_time / self.steps:6.2f} ms/step   '
                f'sample+update {1e3 * self.train_time / self.updates:7.2f} ms/update   '
                f'({self.steps} steps, {self.updates} updates, {total:.1f} s)')


def atari_argv(game, alg, warmup, buffer_size):
    """DQN (or RRD-DQN) on an Atari game with one update per 4 env steps, as the Atari defaults."""
    return [f'--env={game}', f'--alg={alg}', '--timesteps=100', '--train_batches=25', '--batch_size=32',
            f'--warmup={warmup}', f'--buffer_size={buffer_size}']


def race(runs, iterations, round_size):
    """Warm every run up, then time them in alternating rounds of `round_size` iterations."""
    for run in runs:
        run.warm_up()
        run.iterate(1)  # untimed: first-call overheads (graph building, allocator warm-up)
        run.env_time = run.train_time = 0.0
        run.steps = run.updates = 0
    done = 0
    while done < iterations:
        count = min(round_size, iterations - done)
        for run in runs:
            run.iterate(count)
        done += count


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--game', default='Pong')
    parser.add_argument('--alg', default='dqn', choices=('dqn', 'rrd'))
    parser.add_argument('--backends', nargs='+', default=['torch', 'tf'], choices=('torch', 'tf'))
    parser.add_argument('--iterations', type=int, default=30, help='timed iterations per backend')
    parser.add_argument('--round', type=int, default=5, help='iterations per alternating round')
    parser.add_argument('--warmup', type=int, default=1000, help='random steps stored before timing')
    parser.add_argument('--buffer_size', type=int, default=30000, help='at least --test_timesteps (27000)')
    parser.add_argument('--threads', type=int, default=1, help='threads of each backend')
    parser.add_argument('--buffer_on_device', action='store_true',
                        help='also time torch with --buffer_on_device (batches gathered on its device)')
    options = parser.parse_args()
    os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

    argv = atari_argv(options.game, options.alg, options.warmup, options.buffer_size)
    variants = [(backend, argv) for backend in options.backends]
    if options.buffer_on_device:
        variants.append(('torch', argv + ['--buffer_on_device=True']))
    runs = []
    for backend, run_argv in variants:
        try:
            runs.append(TimedLearner(backend, run_argv, options.threads))
        except Exception as error:  # e.g. the backend is not installed
            print(f'{backend}: skipped ({type(error).__name__}: {error})')
    race(runs, options.iterations, options.round)
    print(f'{options.game}: {options.alg.upper()} learner, timesteps 100 + 25 updates of batch 32 per iteration '
          f'(1 update per 4 env steps), {options.threads} thread(s) per backend, '
          f'{os.cpu_count()} CPU(s), load average {os.getloadavg()[0]:.2f}')
    for run in runs:
        print(run.report())


if __name__ == '__main__':
    main()
