"""The whole benchmark suite in one command; writes bench/RESULTS.md (PyTorch vs TensorFlow).

Sections, each run in its own subprocess (TF fixes its thread pools at its first session, and
peak memory is per process): update speed of every agent with 1 and 2 threads and the FLOP bound
(agent_speed.py); what each PyTorch speed-up gives alone, and the opt-in flags (levers.py);
end-to-end RRD-SAC on HalfCheetah, one update per env step; Atari DQN and RRD-DQN learner env
steps/s (atari_bench.py); sampling latency at 1M stored transitions (buffer_bench.py); peak RSS of
a 1M-transition MuJoCo run and of an Atari run. About 15 minutes on 2 cores.

    python bench/run_all.py [--quick] [--output bench/RESULTS.md]
"""
import argparse
import datetime
import json
import os
import platform
import re
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
BENCH = os.path.join(ROOT, 'bench')
E2E_ARGV = ['--env=HalfCheetah-v2', '--alg=rrd', '--basis_alg=sac', '--timesteps=50', '--train_batches=50',
            '--warmup=2000', '--buffer_size=100000']
MEMORY_RUNS = {  # name: (CLI flags, transitions stored before the updates)
    'MuJoCo RRD-SAC, 1M transitions': (['--env=HalfCheetah-v2', '--alg=rrd', '--basis_alg=sac',
                                        '--buffer_size=1000000'], 1_000_000),
    'Atari RRD-DQN, 200k frames': (['--env=Pong', '--alg=rrd', '--basis_alg=dqn', '--buffer_size=200000'], 200_000),
}


def run(command, timeout=1200):
    """Run a bench script in a subprocess; its stdout."""
    env = {'OMP_NUM_THREADS': '2', 'OMP_WAIT_POLICY': 'PASSIVE', **os.environ,  # as train.py runs torch
           'TF_CPP_MIN_LOG_LEVEL': '2'}
    result = subprocess.run([sys.executable, *command], capture_output=True, text=True, timeout=timeout, env=env,
                            cwd=ROOT)
    if result.returncode:
        raise RuntimeError(f'{" ".join(command)} failed:\n{result.stderr[-3000:]}')
    return result.stdout


def json_run(command):
    with tempfile.NamedTemporaryFile(suffix='.json', delete=False) as file:
        path = file.name
    try:
        print(run(command + ['--json', path]), end='', flush=True)
        with open(path) as file:
            return json.load(file)
    finally:
        os.remove(path)


# ---- sections run in subprocesses -------------------------------------------------------------------
def end_to_end(threads, iterations):
    """RRD-SAC HalfCheetah: env step + acting + one update per step, both backends in turns."""
    from bench.atari_bench import TimedLearner, race
    runs = [TimedLearner(backend, E2E_ARGV, threads) for backend in ('torch', 'tf')]
    race(runs, iterations, round_size=1)
    return {run.backend: {'steps_per_s': run.steps / (run.env_time + run.train_time),
                          'env_ms': 1e3 * run.env_time / run.steps, 'update_ms': 1e3 * run.train_time / run.updates}
            for run in runs}


def peak_memory(name, backend):
    """Peak RSS (MiB) of one run: the buffer filled with synthetic episodes, then 50 updates."""
    from algorithm import create_agent
    from algorithm.replay_buffer import create_buffer
    from arguments import get_args
    from bench.buffer_bench import fill
    from envs import make_env
    from train import describe_env
    from numpy.lib.stride_tricks import sliding_window_view
    flags, transitions = MEMORY_RUNS[name]
    args = get_args(flags + [f'--use_pytorch={backend == "torch"}', '--cuda=False', '--threads=1'])
    describe_env(args, make_env(args))
    agent, buffer = create_agent(args), create_buffer(args)
    if args.discrete:
        def make_obs(t):
            return sliding_window_view(np.random.randint(0, 256, (t + 4, 84, 84), np.uint8), 4, axis=0)

        def make_acts(t):
            return np.random.randint(0, args.acts_dims[0], t)
    else:
        def make_obs(t):
            return np.random.randn(t + 1, *args.obs_dims).astype(np.float32)

        def make_acts(t):
            return np.random.uniform(-1, 1, (t, *args.acts_dims)).astype(np.float32)
    fill(buffer, transitions, 1000, make_obs, make_acts)
    for _ in range(50):
        {key: float(value) for key, value in agent.train(buffer.sample_batch()).items()}
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def sampling_latency(size, calls):
    from bench.buffer_bench import vector_section
    milliseconds, _ = vector_section(size, calls)
    return milliseconds


# ---- the report ----------------------------------------------------------------------------------------
def machine():
    lscpu = subprocess.run(['lscpu'], capture_output=True, text=True).stdout
    model = re.search(r'Model name:\s*(.+)', lscpu)
    flags = re.search(r'Flags:\s*(.+)', lscpu)
    isa = [f for f in ('avx2', 'avx512f', 'avx512_bf16', 'amx_bf16') if flags and f in flags.group(1).split()]
    import torch
    from utils.tf_utils import tf
    return (f'{model.group(1).strip() if model else platform.processor()}, {os.cpu_count()} cores '
            f'({", ".join(isa)}); Python {platform.python_version()}, torch {torch.__version__}, '
            f'tensorflow {tf.__version__}; GPU: not lent to this task (no CUDA figures were measured)')


def ratio(a, b):
    return f'{a / b:.2f}' if b else 'n/a'


def speed_table(speeds):
    lines = ['| agent | threads | TF updates/s | torch updates/s | torch/TF | torch/TF per CPU second | '
             'MFLOP/update | FLOP bound, updates per CPU second | TF of bound | torch of bound | GPU |',
             '|---|---|---|---|---|---|---|---|---|---|---|']
    for result in speeds:
        for alg, r in result['algs'].items():
            bound = result['gemm_gflops'] * 1e9 / r['flops']
            lines.append(f'| {alg} | {result["threads"]} | {r["tf"]:.1f} | {r["torch"]:.1f} | '
                         f'**{ratio(r["torch"], r["tf"])}** | {ratio(r["torch_cpu"], r["tf_cpu"])} | '
                         f'{r["flops"] / 1e6:.0f} | {bound:.0f} | {r["tf_cpu"] / bound:.0%} | '
                         f'{r["torch_cpu"] / bound:.0%} | not lent |')
    return lines


def lever_table(levers):
    lines = ['| agent | variant | updates/s | vs reference | vs reference per CPU second | torch/TF | '
             'torch/TF per CPU second |', '|---|---|---|---|---|---|---|']
    for alg, result in levers.items():
        wall, cpu = result['wall'], result['cpu']
        names = [name for name in wall if name != 'TF']
        for name in names:
            lines.append(f'| {alg} | {name} | {wall[name]:.1f} | x{ratio(wall[name], wall[names[0]])} | '
                         f'x{ratio(cpu[name], cpu[names[0]])} | {ratio(wall[name], wall["TF"])} | '
                         f'{ratio(cpu[name], cpu["TF"])} |')
        lines.append(f'| {alg} | TF reference | {wall["TF"]:.1f} | | | | |')
        if 'compile seconds' in result:
            lines.append(f'| {alg} | (first --compile update: {result["compile seconds"]:.0f} s of compilation) '
                         f'| | | | | |')
    return lines


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--quick', action='store_true', help='few updates everywhere: checks the suite runs')
    parser.add_argument('--output', default=os.path.join(BENCH, 'RESULTS.md'))
    parser.add_argument('--section', nargs=2, metavar=('NAME', 'ARG'), help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.section:  # a subprocess of this script: one measurement, printed as JSON
        name, arg = options.section
        if name == 'e2e':
            print(json.dumps(end_to_end(1, int(arg))))
        elif name == 'memory':
            label, backend = arg.rsplit(':', 1)
            print(json.dumps(peak_memory(label, backend)))
        elif name == 'sampling':
            print(json.dumps(sampling_latency(int(arg), 300)))
        return

    quick = options.quick
    started, load_start, clock = datetime.datetime.now(), os.getloadavg()[0], time.perf_counter()
    updates, image_updates, repeats = ('30', '5', '1') if quick else ('150', '15', '3')
    speeds = [json_run([os.path.join(BENCH, 'agent_speed.py'), '--algs', 'ddpg', 'td3', 'sac', 'dqn', 'dqn-image',
                        'rrd-ddpg', 'rrd-td3', 'rrd-sac', 'rrd-dqn', 'rrd-dqn-image', '--updates', updates,
                        '--image_updates', image_updates, '--repeats', repeats, '--threads', str(threads)])
              for threads in (1, 2)]
    levers = json_run([os.path.join(BENCH, 'levers.py'), '--algs', 'sac', 'rrd-sac', '--updates', updates,
                       '--repeats', repeats, '--threads', '1'])

    def section(name, arg):
        return json.loads(run([os.path.abspath(__file__), '--section', name, arg]).strip().splitlines()[-1])

    e2e = section('e2e', '2' if quick else '10')
    print('end-to-end', e2e, flush=True)
    atari = {}
    for alg in ('dqn', 'rrd'):
        out = run([os.path.join(BENCH, 'atari_bench.py'), '--alg', alg, '--iterations', '2' if quick else '8',
                   '--round', '2', '--warmup', '1000'])
        print(out, end='', flush=True)
        atari[alg] = {m.group(1): float(m.group(2)) for m in re.finditer(r'^\s*(torch|tf)\s+([\d.]+) env steps/s', out, re.M)}
    sampling = section('sampling', str(100_000 if quick else 1_000_000))
    memory = {label: {backend: section('memory', f'{label}:{backend}') for backend in ('torch', 'tf')}
              for label in MEMORY_RUNS}
    print('memory', memory, flush=True)
    minutes, load_end = (time.perf_counter() - clock) / 60, os.getloadavg()[0]

    lines = ['# Benchmark results: PyTorch backend vs TensorFlow reference', '',
             f'Written by `python bench/run_all.py{" --quick" if quick else ""}` on {started:%Y-%m-%d %H:%M} '
             f'in {minutes:.0f} minutes.', '', f'Machine: {machine()}.', '',
             f'Load average {load_start:.1f} at the start and {load_end:.1f} at the end: other processes shared the '
             'cores, so every figure comes from the two backends taking turns on the same work in one run, '
             'best of the runs; the ratios are the figures to read, and the per-CPU-second ratios (time '
             'this process actually ran) are the steadier ones when the machine is loaded.', '',
             '## Update speed (same batches for both backends; learner-shaped updates incl. target update)', '',
             *speed_table(speeds), '',
             'FLOP bound: matmul + convolution FLOPs of one update (counted by torch, forward and backward) '
             f'at this machine\'s fp32 GEMM rate per core, measured in the same run ({speeds[0]["gemm_gflops"]:.0f} '
             'GFLOP/s per CPU second, 1024^3 products); "of bound" is the share of it each backend reaches per CPU '
             'second it runs (so other processes on the machine do not count against it).', '',
             '## Levers: what each PyTorch speed-up gives alone (1 thread)', '', *lever_table(levers), '',
             '## End-to-end RRD-SAC on HalfCheetah (env step + acting + one update per step, 1 thread)', '',
             '| backend | env steps/s | env + acting ms/step | sample + update ms/update |', '|---|---|---|---|',
             *[f'| {b} | {r["steps_per_s"]:.1f} | {r["env_ms"]:.2f} | {r["update_ms"]:.2f} |' for b, r in e2e.items()],
             f'| torch/TF | **{ratio(e2e["torch"]["steps_per_s"], e2e["tf"]["steps_per_s"])}** | | |', '',
             '## Atari learner (Pong, 100 env steps + 25 updates of batch 32 per iteration, 1 thread)', '',
             '| agent | TF env steps/s | torch env steps/s | torch/TF |', '|---|---|---|---|',
             *[f'| {"RRD-DQN" if alg == "rrd" else "DQN"} | {r.get("tf", 0):.1f} | {r.get("torch", 0):.1f} | '
               f'**{ratio(r.get("torch", 0), r.get("tf", 0))}** |' for alg, r in atari.items()], '',
             '## Replay buffer and memory', '',
             f'Sampling latency (RRD buffer, {"100k" if quick else "1M"} HalfCheetah transitions, batch 256 + RRD 4x64, '
             f'median): {sampling:.3f} ms (shared by both backends: the buffer is numpy).', '',
             '| run (synthetic episodes, then 50 updates; one subprocess each) | TF peak RSS MiB | '
             'torch peak RSS MiB | torch/TF |', '|---|---|---|---|',
             *[f'| {label} | {r["tf"]:.0f} | {r["torch"]:.0f} | {ratio(r["torch"], r["tf"])} |'
               for label, r in memory.items()], '']
    with open(options.output, 'w') as file:
        file.write('\n'.join(lines))
    print(f'wrote {options.output}')


if __name__ == '__main__':
    main()
