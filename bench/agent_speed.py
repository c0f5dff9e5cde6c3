"""Agent update speed, TensorFlow reference vs PyTorch port, on the same pre-generated batches.

Every configuration uses the CLI defaults of its env: `sac`, `td3`, `ddpg` and `rrd-*` over them
are HalfCheetah-sized (obs 17, act 6, batch 256, RRD 4 episodes x 64 samples), `dqn` is
CartPole-sized (obs 4, 2 actions, batch 256) and `dqn-image` Atari-sized (84x84x4 uint8 frames,
6 actions, batch 32, RRD 1 x 32). An update is what the learner does: `train` (TD3: `train_q`,
and `train_pi` every `pi_delay_freq`-th update), then a target update, with every info value
read back as a float. The backends take turns `--repeats` times on the same numpy batches and
the best run counts, which damps the noise of a shared machine. Prints updates/s per backend, the
torch / TF ratio (also per CPU second), and the FLOP bound: the matmul + conv FLOPs of one update
at the fp32 GEMM rate of one core (measured at the start), against the updates each backend
makes per CPU second.

    python bench/agent_speed.py [--algs sac rrd-sac] [--updates 200] [--repeats 3] [--threads 1] [--json out.json]
"""
import argparse
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from algorithm import create_agent  # noqa: E402
from arguments import get_args  # noqa: E402

ALGS = ('ddpg', 'td3', 'sac', 'dqn', 'dqn-image', 'rrd-ddpg', 'rrd-td3', 'rrd-sac', 'rrd-dqn', 'rrd-dqn-image')
SHAPES = {'mujoco': (['--env', 'HalfCheetah-v2'], [17], [6]), 'classic': (['--env', 'CartPole-v1'], [4], [2]),
          'image': (['--env', 'Pong'], [84, 84, 4], [6])}


def make_args(alg, backend, threads=0, flags=()):
    """Parsed CLI defaults for `alg` ('rrd-sac' is --alg rrd --basis_alg sac, '-image' an Atari
    game), with the env's dimensions filled in; `flags` are extra CLI flags (e.g. --amp)."""
    image = alg.endswith('-image')
    alg, _, basis = alg.removesuffix('-image').partition('-')
    learner_alg = basis or alg
    env, obs_dims, acts_dims = SHAPES['image' if image else 'classic' if learner_alg == 'dqn' else 'mujoco']
    argv = env + ['--alg', alg, '--use_pytorch', str(backend == 'torch'), '--cuda', 'False',
                  '--threads', str(threads), *flags]
    if basis:
        argv += ['--basis_alg', basis]
    args = get_args(argv)
    args.obs_dims, args.acts_dims, args.discrete = list(obs_dims), list(acts_dims), learner_alg == 'dqn'
    return args


def make_batches(args, count, seed=0):
    """`count` learner-shaped batches (and RRD batches) for the agent built from `args`."""
    rng = np.random.default_rng(seed)
    image = len(args.obs_dims) == 3

    def obs(*lead):
        if image:  # channels-first in memory, viewed channels-last: as the replay buffer samples them
            height, width, frames = args.obs_dims
            return np.moveaxis(rng.integers(0, 256, (*lead, frames, height, width), dtype=np.uint8), -3, -1)
        return rng.standard_normal((*lead, *args.obs_dims), dtype=np.float32)

    def acts(*lead):
        if args.discrete:
            return rng.integers(0, args.acts_dims[0], lead)
        return rng.uniform(-1, 1, (*lead, *args.acts_dims)).astype(np.float32)

    batches, size = [], args.batch_size
    for _ in range(count):
        batch = {'obs': obs(size), 'obs_next': obs(size), 'acts': acts(size),
                 'rews': rng.standard_normal((size, 1), dtype=np.float32),
                 'done': (rng.uniform(size=(size, 1)) < 0.01).astype(np.float32)}
        if args.alg == 'rrd':
            episodes, samples = args.rrd_batch_size // args.rrd_sample_size, args.rrd_sample_size
            batch.update({'rrd_obs': obs(episodes, samples), 'rrd_obs_next': obs(episodes, samples),
                          'rrd_acts': acts(episodes, samples),
                          'rrd_rews': rng.standard_normal((episodes, 1), dtype=np.float32)})
        batches.append(batch)
    return batches


def learner_update(agent, batch, update, read_back=True):
    """One update as the learner makes it (TD3's policy every pi_delay_freq-th), info read back
    (on a GPU the learner does not: its logger reads sums once per cycle)."""
    args = agent.args
    if (args.basis_alg if args.alg == 'rrd' else args.alg) == 'td3':
        info = agent.train_q(batch)
        if update % args.pi_delay_freq == 0:
            info.update(agent.train_pi(batch))
    else:
        info = agent.train(batch)
    if read_back:
        {key: float(value) for key, value in info.items()}
    agent.target_update()


def updates_per_second(agent, batches, warmup):
    """(updates per wall-clock second, updates per CPU second of this process)."""
    for update, batch in enumerate(batches[:warmup]):
        learner_update(agent, batch, update)
    wall, cpu = time.perf_counter(), time.process_time()
    for update, batch in enumerate(batches[warmup:]):
        learner_update(agent, batch, update)
    count = len(batches) - warmup
    return count / (time.perf_counter() - wall), count / (time.process_time() - cpu)


def race(agents, batches, warmup, repeats):
    """{name: best updates/s}, and {name: best updates per CPU second}, for agents that take turns
    on the same batches. On a loaded machine the CPU-time rate is the steadier one: it does not
    count the time other processes hold the cores (TF's spinning worker threads do count)."""
    wall, cpu = {name: 0.0 for name in agents}, {name: 0.0 for name in agents}
    for _ in range(repeats):
        for name, agent in agents.items():
            run_wall, run_cpu = updates_per_second(agent, batches, warmup)
            wall[name], cpu[name] = max(wall[name], run_wall), max(cpu[name], run_cpu)
    return wall, cpu


def update_flops(torch_agent, batch):
    """Matmul and convolution FLOPs of one update (forward and backward), counted by torch. The
    counter sees one thread's work: the update is counted with its losses on one thread, eagerly
    (a replay runs the same products; a first replay would count its recording's too)."""
    from torch.utils.flop_counter import FlopCounterMode
    branch_threads, torch_agent.branch_threads = torch_agent.branch_threads, 0
    traced_losses, torch_agent.traced_losses = torch_agent.traced_losses, None
    try:
        with FlopCounterMode(display=False) as counter:
            learner_update(torch_agent, batch, 0)
    finally:
        torch_agent.branch_threads, torch_agent.traced_losses = branch_threads, traced_losses
    return counter.get_total_flops()


def gemm_gflops(size=1024, calls=20):
    """This machine's fp32 GEMM rate per core: [size]^3 products on one thread, per CPU second (best
    of 3), so other processes on the machine do not lower it."""
    import torch
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    a, b = torch.randn(size, size), torch.randn(size, size)
    best = float('inf')
    for _ in range(3):
        start = time.process_time()
        for _ in range(calls):
            torch.mm(a, b)
        best = min(best, time.process_time() - start)
    torch.set_num_threads(threads)
    return 2 * size ** 3 * calls / best / 1e9


def measure(alg, threads, updates, warmup, repeats):
    """{'tf', 'torch': updates/s, 'flops': FLOPs per update} for one configuration."""
    import torch
    torch.set_num_threads(threads)
    agents = {backend: create_agent(make_args(alg, backend, threads)) for backend in ('tf', 'torch')}
    batches = make_batches(agents['torch'].args, warmup + updates)
    wall, cpu = race(agents, batches, warmup, repeats)
    return {**wall, 'tf_cpu': cpu['tf'], 'torch_cpu': cpu['torch'], 'flops': update_flops(agents['torch'], batches[0])}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--algs', nargs='+', default=['sac', 'rrd-sac'], choices=ALGS)
    parser.add_argument('--updates', type=int, default=200)
    parser.add_argument('--image_updates', type=int, default=20, help='timed updates of the image agents')
    parser.add_argument('--warmup', type=int, default=20)
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--threads', type=int, default=1,
                        help='threads of both backends; TF fixes its pools at its first session, so one '
                             'setting per process')
    parser.add_argument('--json', help='also write the results to this file')
    options = parser.parse_args(argv)
    import torch
    from utils.tf_utils import tf
    gemm = gemm_gflops()
    print(f'torch {torch.__version__}, tensorflow {tf.__version__}; {options.threads} thread(s), fp32 GEMM '
          f'{gemm:.0f} GFLOP/s per core; {options.updates} timed updates, best of {options.repeats}; '
          f'load average {os.getloadavg()[0]:.2f}')
    results = {'threads': options.threads, 'gemm_gflops': gemm, 'algs': {}}
    for alg in options.algs:
        updates = options.image_updates if alg.endswith('-image') else options.updates
        result = results['algs'][alg] = measure(alg, options.threads, updates, min(options.warmup, updates),
                                                options.repeats)
        bound = gemm * 1e9 / result['flops']  # updates per CPU second at the GEMM rate
        print(f'{alg:>13}: TF {result["tf"]:7.1f} updates/s   torch {result["torch"]:7.1f} updates/s   '
              f'torch/TF {result["torch"] / result["tf"]:.2f} (CPU time: {result["torch_cpu"] / result["tf_cpu"]:.2f})   '
              f'{result["flops"] / 1e6:.0f} MFLOP/update, FLOP bound {bound:.0f} updates per CPU second '
              f'(TF {result["tf_cpu"] / bound:.0%}, torch {result["torch_cpu"] / bound:.0%})')
    if options.json:
        with open(options.json, 'w') as file:
            json.dump(results, file)


if __name__ == '__main__':
    main()
