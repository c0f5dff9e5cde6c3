"""Replay buffer benchmark: sampling time and bytes stored per transition.

Vector: an RRD buffer of 1M HalfCheetah-sized transitions (obs 17, act 6, 1000-step episodes);
time of one `sample_batch` (batch 256 + RRD 4 x 64). Atari: a 100k-step RRD buffer of 84x84x4
stacks (projected to 1M); time of batch 32 + RRD 1 x 32. Targets: vector sample < 0.3 ms,
storage within 10% (vector) / 5% (Atari) of the raw size.

    python bench/buffer_bench.py [--small]
"""
import argparse
import os
import sys
import time
import types

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from algorithm.replay_buffer import create_buffer  # noqa: E402


def fill(buffer, n_steps, episode_len, make_obs, make_acts):
    start = time.perf_counter()
    for _ in range(n_steps // episode_len):
        done = np.zeros(episode_len, bool)
        done[-1] = True
        buffer.store_episode(make_obs(episode_len), make_acts(episode_len),
                             np.random.randn(episode_len).astype(np.float32), done)
    return time.perf_counter() - start


def median_ms(fn, calls):
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1e3 * float(np.median(times))


def device_sample_ms(buffer, calls):
    """`sample_batch`'s median ms through --buffer_on_device's gather, on torch's CPU device (the
    code path a GPU runs, without one), or None without torch."""
    try:
        import torch  # noqa: F401
    except ImportError:
        return None
    buffer.keep_on_device('cpu')
    try:
        return median_ms(buffer.sample_batch, calls)
    finally:
        buffer.storage.device_ring = None


def vector_section(size, calls):
    args = types.SimpleNamespace(
        buffer_size=size, batch_size=256, obs_dims=[17], acts_dims=[6], discrete=False, alg='rrd',
        rrd_batch_size=256, rrd_sample_size=64, rrd_bias_correction=True, env_category='mujoco')
    buffer = create_buffer(args)
    seconds = fill(buffer, size, 1000, lambda t: np.random.randn(t + 1, 17).astype(np.float32),
                   lambda t: np.random.uniform(-1, 1, (t, 6)).astype(np.float32))
    raw = 17 * 4 + 6 * 4 + 4 + 1  # obs, acts, rew, done flag
    plain = median_ms(lambda: buffer.storage.transitions(*buffer.storage.sample_steps(256, np.random)), calls)
    full = median_ms(buffer.sample_batch, calls)
    per_step = buffer.nbytes / len(buffer)
    print(f'vector ({len(buffer):,} transitions, filled in {seconds:.1f} s)')
    print(f'  sample_batch  batch 256 + RRD 4x64: {full:.3f} ms median ({plain:.3f} ms for the batch of 256 alone)')
    device = device_sample_ms(buffer, calls)
    if device is not None:
        print(f'                gathered by torch (--buffer_on_device on the CPU device): {device:.3f} ms median')
    print(f'  storage       {per_step:.1f} bytes/transition vs raw {raw} -> ratio {per_step / raw:.3f}')
    return full, per_step / raw, device


def atari_section(size, calls, projected=1_000_000):
    args = types.SimpleNamespace(
        buffer_size=size, batch_size=32, obs_dims=[84, 84, 4], acts_dims=[6], discrete=True, alg='rrd',
        rrd_batch_size=32, rrd_sample_size=32, rrd_bias_correction=True, env_category='atari', frames=4)
    buffer = create_buffer(args)

    def stacks(t):  # T + 1 consistent stacks, a view of T + 4 frames
        return sliding_window_view(np.random.randint(0, 256, (t + 4, 84, 84), np.uint8), 4, axis=0)

    seconds = fill(buffer, size, 1000, stacks, lambda t: np.random.randint(0, 6, t))
    raw = 84 * 84 + 8 + 4 + 1  # one frame, int64 action, rew, done flag
    full = median_ms(buffer.sample_batch, calls)
    per_step = buffer.nbytes / len(buffer)
    print(f'atari ({len(buffer):,} steps, filled in {seconds:.1f} s)')
    print(f'  sample_batch  batch 32 + RRD 1x32: {full:.3f} ms median')
    device = device_sample_ms(buffer, calls)
    if device is not None:
        print(f'                gathered by torch (--buffer_on_device on the CPU device): {device:.3f} ms median')
    print(f'  storage       {per_step:.1f} bytes/step vs one frame + fields {raw} -> ratio {per_step / raw:.3f}')
    print(f'  projected     {projected:,}-step buffer: {per_step * projected / 2**30:.2f} GiB')
    try:  # numpy allocates lazily: this checks the size against free memory without filling it
        allocated = create_buffer(types.SimpleNamespace(**{**vars(args), 'buffer_size': projected})).nbytes
        print(f'  allocated     {projected:,}-step buffer (memory check passed): {allocated / 2**30:.2f} GiB')
    except MemoryError as error:
        print(f'  allocated     {projected:,}-step buffer refused: {error}')
    return full, per_step / raw


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--small', action='store_true', help='quick run: 100k vector, 20k Atari steps')
    options = parser.parse_args()
    np.random.seed(0)
    calls = 200 if options.small else 2000
    vector_ms, vector_ratio, _ = vector_section(100_000 if options.small else 1_000_000, calls)
    atari_ms, atari_ratio = atari_section(20_000 if options.small else 100_000, calls)
    print(f'targets: vector sample < 0.3 ms: {"ok" if vector_ms < 0.3 else "MISSED"}; '
          f'vector storage within 10%: {"ok" if vector_ratio <= 1.10 else "MISSED"}; '
          f'Atari storage within 5%: {"ok" if atari_ratio <= 1.05 else "MISSED"}')


if __name__ == '__main__':
    main()
