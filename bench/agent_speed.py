"""Agent update speed, TensorFlow reference vs PyTorch port, on the same pre-generated batches.

HalfCheetah-sized: obs 17, act 6, batch 256; RRD adds a reward-regression batch of 4 episodes x
64 samples. Each backend runs `--updates` `train(batch)` calls (after `--warmup` untimed ones)
over the same numpy batches, reading every info value back as a float like the learner does;
the backends take turns `--repeats` times and the best run counts, which damps the noise of a
shared machine. `--threads N` gives both backends N intra-op threads (default: each its own).
Prints updates/s per backend and the TF / torch ratio.

    python bench/agent_speed.py [--algs sac rrd-sac] [--updates 300] [--warmup 30] [--repeats 2] [--threads N]
"""
import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from algorithm import create_agent  # noqa: E402
from arguments import get_args  # noqa: E402

OBS_DIM, ACT_DIM, BATCH, EPISODES, SAMPLES = 17, 6, 256, 4, 64


def make_args(alg, backend):
    """CLI defaults for HalfCheetah; `rrd-sac` means --alg rrd --basis_alg sac."""
    alg, _, basis = alg.partition('-')
    argv = ['--env', 'HalfCheetah-v2', '--alg', alg, '--use_pytorch', str(backend == 'torch'), '--cuda', 'False']
    if basis:
        argv += ['--basis_alg', basis]
    args = get_args(argv)
    args.obs_dims, args.acts_dims = [OBS_DIM], [ACT_DIM]
    return args


def make_batches(count, rrd, seed=0):
    rng = np.random.default_rng(seed)

    def normal(*shape):
        return rng.standard_normal(shape, dtype=np.float32)

    batches = []
    for _ in range(count):
        batch = {'obs': normal(BATCH, OBS_DIM), 'obs_next': normal(BATCH, OBS_DIM),
                 'acts': rng.uniform(-1, 1, (BATCH, ACT_DIM)).astype(np.float32),
                 'rews': normal(BATCH, 1), 'done': (rng.uniform(size=(BATCH, 1)) < 0.01).astype(np.float32)}
        if rrd:
            batch.update({'rrd_obs': normal(EPISODES, SAMPLES, OBS_DIM),
                          'rrd_obs_next': normal(EPISODES, SAMPLES, OBS_DIM),
                          'rrd_acts': rng.uniform(-1, 1, (EPISODES, SAMPLES, ACT_DIM)).astype(np.float32),
                          'rrd_rews': normal(EPISODES, 1)})
        batches.append(batch)
    return batches


def updates_per_second(agent, batches, warmup):
    for batch in batches[:warmup]:
        agent.train(batch)
    start = time.perf_counter()
    for batch in batches[warmup:]:
        info = agent.train(batch)
        {key: float(value) for key, value in info.items()}
    return (len(batches) - warmup) / (time.perf_counter() - start)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--algs', nargs='+', default=['sac', 'rrd-sac'])
    parser.add_argument('--updates', type=int, default=300)
    parser.add_argument('--warmup', type=int, default=30)
    parser.add_argument('--repeats', type=int, default=2)
    parser.add_argument('--threads', type=int, default=None)
    options = parser.parse_args(argv)
    import torch
    from utils.tf_utils import tf
    if options.threads:
        torch.set_num_threads(options.threads)
        tf.config.threading.set_intra_op_parallelism_threads(options.threads)
        tf.config.threading.set_inter_op_parallelism_threads(options.threads)
    print(f'torch {torch.__version__} ({torch.get_num_threads()} threads), tensorflow {tf.__version__} '
          f'({options.threads or "default"} threads); obs {OBS_DIM}, act {ACT_DIM}, batch {BATCH}, '
          f'RRD {EPISODES}x{SAMPLES}; {options.updates} timed updates, best of {options.repeats}')
    for alg in options.algs:
        batches = make_batches(options.warmup + options.updates, rrd=alg.startswith('rrd'))
        agents = {backend: create_agent(make_args(alg, backend)) for backend in ('tf', 'torch')}
        speed = {backend: 0.0 for backend in agents}
        for _ in range(options.repeats):
            for backend, agent in agents.items():
                speed[backend] = max(speed[backend], updates_per_second(agent, batches, options.warmup))
        print(f'{alg:>8}: TF {speed["tf"]:7.1f} updates/s   torch {speed["torch"]:7.1f} updates/s   '
              f'TF/torch {speed["tf"] / speed["torch"]:.2f}')


if __name__ == '__main__':
    main()
