"""The whole benchmark suite in one command; writes bench/RESULTS.md (PyTorch vs TensorFlow).

Sections, each run in its own subprocess (TF fixes its thread pools at its first session, and
peak memory is per process): update speed of every agent with 1 and 2 threads and the FLOP bound
(agent_speed.py); what each PyTorch speed-up gives alone, and the opt-in flags (levers.py);
SAC and RRD-SAC again with MKL's Intel code path on non-Intel CPUs (tools/mkl_intel_path.py);
end-to-end RRD-SAC on HalfCheetah, one update per env step; Atari DQN and RRD-DQN learner env
steps/s (atari_bench.py); sampling latency at 1M stored transitions (buffer_bench.py); peak RSS of
a 1M-transition MuJoCo run and of an Atari run. About 15 minutes on 2 cores. The GPU column and
section come from gpu_bench.py: run here where torch sees CUDA, or read from its --json output taken
on a GPU machine (--gpu_json; the figures keep that machine's name and date).

    python bench/run_all.py [--quick] [--gpu_json gpu.json] [--output bench/RESULTS.md]
    (--render: rewrite it from RESULTS.json)
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
DEVICE_RUN = 'torch --buffer_on_device'  # the end-to-end run with the opt-in device buffer
MEMORY_RUNS = {  # name: (CLI flags, transitions stored before the updates)
    'MuJoCo RRD-SAC, 1M transitions': (['--env=HalfCheetah-v2', '--alg=rrd', '--basis_alg=sac',
                                        '--buffer_size=1000000'], 1_000_000),
    'Atari RRD-DQN, 200k frames': (['--env=Pong', '--alg=rrd', '--basis_alg=dqn', '--buffer_size=200000'], 200_000),
}


def run(command, timeout=1200, env=None):
    """Run a bench script in a subprocess (with `env` added to the environment); its stdout."""
    env = {'OMP_NUM_THREADS': '2', **os.environ,
           'TF_CPP_MIN_LOG_LEVEL': '2', **(env or {})}
    result = subprocess.run([sys.executable, *command], capture_output=True, text=True, timeout=timeout, env=env,
                            cwd=ROOT)
    if result.returncode:
        raise RuntimeError(f'{" ".join(command)} failed:\n{result.stderr[-3000:]}')
    return result.stdout


def json_run(command, env=None):
    with tempfile.NamedTemporaryFile(suffix='.json', delete=False) as file:
        path = file.name
    try:
        print(run(command + ['--json', path], env=env), end='', flush=True)
        with open(path) as file:
            return json.load(file)
    finally:
        os.remove(path)


# ---- sections run in subprocesses -------------------------------------------------------------------
def end_to_end(threads, iterations):
    """RRD-SAC HalfCheetah: env step + acting + one update per step, both backends in turns (and
    torch with --buffer_on_device, on the CPU device here)."""
    from bench.atari_bench import TimedLearner, race
    runs = [TimedLearner(backend, E2E_ARGV, threads) for backend in ('torch', 'tf')]
    runs.append(TimedLearner('torch', E2E_ARGV + ['--buffer_on_device=True'], threads))
    race(runs, iterations, round_size=1)
    return {run.label: {'steps_per_s': run.steps / (run.env_time + run.train_time),
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


def mkl_intel_path_speeds(updates, repeats):
    """SAC and RRD-SAC against TF with MKL's Intel code path (the opt-in tools/mkl_intel_path.py),
    1 and 2 threads: {'speeds': [agent_speed results]}, or {'skipped': why not measured here}."""
    import torch
    from tools import mkl_intel_path
    if not torch.backends.mkl.is_available():
        return {'skipped': 'this torch does not use MKL'}
    if mkl_intel_path.cpu_vendor() == 'GenuineIntel':
        return {'skipped': 'an Intel CPU, where MKL already takes its Intel path'}
    with tempfile.TemporaryDirectory() as tmp:
        try:
            shim = mkl_intel_path.build(tmp)
        except RuntimeError as error:
            return {'skipped': str(error)}
        return {'speeds': [json_run([os.path.join(BENCH, 'agent_speed.py'), '--algs', 'sac', 'rrd-sac',
                                     '--updates', updates, '--repeats', repeats, '--threads', str(threads)],
                                    env={'LD_PRELOAD': shim}) for threads in (1, 2)]}


def sampling_latency(size, calls):
    from bench.buffer_bench import vector_section
    milliseconds, _, torch_milliseconds = vector_section(size, calls)
    return milliseconds, torch_milliseconds


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
            f'tensorflow {tf.__version__}')


def ratio(a, b):
    return f'{a / b:.2f}' if b else 'n/a'


def speed_table(speeds, gpu):
    lines = ['| agent | threads | TF updates/s | torch updates/s | torch/TF | torch/TF per CPU second | '
             'MFLOP/update | FLOP bound, updates per CPU second | TF of bound | torch of bound | '
             'torch on the GPU, updates/s |',
             '|---|---|---|---|---|---|---|---|---|---|---|']
    for result in speeds:
        for alg, r in result['algs'].items():
            bound = result['gemm_gflops'] * 1e9 / r['flops']
            lines.append(f'| {alg} | {result["threads"]} | {r["tf"]:.1f} | {r["torch"]:.1f} | '
                         f'**{ratio(r["torch"], r["tf"])}** | {ratio(r["torch_cpu"], r["tf_cpu"])} | '
                         f'{r["flops"] / 1e6:.0f} | {bound:.0f} | {r["tf_cpu"] / bound:.0%} | '
                         f'{r["torch_cpu"] / bound:.0%} | {gpu_cell(gpu, alg) if result["threads"] == 1 else ""} |')
    return lines


def mkl_section(results):
    """The opt-in MKL shim's runs beside the default ones (each ratio side by side in its own run)."""
    mkl = results.get('mkl', {})
    if 'speeds' not in mkl:
        return [f'Not measured in this run: {mkl.get("skipped", "not part of this run")}.']
    default = {(result['threads'], alg): r for result in results['speeds'] for alg, r in result['algs'].items()}
    lines = ['| agent | threads | torch/TF, default | torch/TF, MKL Intel path | per CPU second, default | '
             'per CPU second, MKL Intel path |', '|---|---|---|---|---|---|']
    for result in mkl['speeds']:
        for alg, r in result['algs'].items():
            d = default[result['threads'], alg]
            lines.append(f'| {alg} | {result["threads"]} | {ratio(d["torch"], d["tf"])} | '
                         f'**{ratio(r["torch"], r["tf"])}** | {ratio(d["torch_cpu"], d["tf_cpu"])} | '
                         f'{ratio(r["torch_cpu"], r["tf_cpu"])} |')
    gemm = mkl['speeds'][0]['gemm_gflops']
    return lines + ['', f'fp32 GEMM rate per core (1024^3 products) with the Intel path: {gemm:.0f} GFLOP/s, '
                    f'against {results["speeds"][0]["gemm_gflops"]:.0f} in the default run.']


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
            lines.append(f'| {alg} | (first --compile update: {result["compile seconds"]:.0f} s, with whatever '
                         f'inductor\'s on-disk cache already held; 60-90 s cold here) | | | | | |')
    return lines


def gpu_cell(gpu, alg):
    """The GPU column (on the 1-thread rows): torch's eager updates/s on the GPU, where gpu_bench
    measured this agent (learner-shaped updates in its every-agent part; else its SAC tables)."""
    if alg in gpu.get('every_agent', {}):
        return f'{gpu["every_agent"][alg]:.1f}'
    result = gpu.get('algs', {}).get(alg)
    if result:
        return f'{result["updates_per_s"]["eager (as shipped)"]:.1f}'
    return 'not measured' if 'algs' in gpu else 'no GPU'


def read_gpu_json(path):
    """gpu_bench.py's --json output from a GPU machine; ValueError naming the problem otherwise."""
    try:
        with open(path) as file:
            gpu = json.load(file)
    except (OSError, json.JSONDecodeError) as error:
        raise ValueError(f'--gpu_json {path}: cannot read it ({error})') from None
    if not isinstance(gpu, dict) or not isinstance(gpu.get('algs'), dict) or 'device' not in gpu:
        raise ValueError(f'--gpu_json {path}: not the --json output of bench/gpu_bench.py')
    if gpu['device'].startswith('CPU'):
        raise ValueError(f'--gpu_json {path}: measured on the CPU device, not a GPU')
    return gpu


def gpu_figures(quick):
    """gpu_bench.py with the CUDA tests, where torch sees CUDA; else why not."""
    import torch
    if not torch.cuda.is_available():
        return {'skipped': 'no GPU on the machine that ran the suite, and no --gpu_json given'}
    return json_run([os.path.join(BENCH, 'gpu_bench.py'), '--tests', '--updates', '50' if quick else '300',
                     '--repeats', '1' if quick else '3', '--buffer_size', '100000' if quick else '1000000'])


def gpu_section(gpu):
    if 'algs' not in gpu:
        return [f'**No CUDA figure was measured** ({gpu.get("skipped", "not part of this run")}): fused Adam '
                'on CUDA, `--compile` with CUDA graphs and `--buffer_on_device` are tested on the CPU (the last on '
                'torch\'s CPU device: the numpy buffer\'s batches exactly, the same training run row for row), '
                'but their speed on a GPU, and the port on CUDA against the port on the CPU, are unverified. On a '
                'GPU machine, `python bench/gpu_bench.py --tests --json gpu.json` runs the CUDA checks '
                '(`pytest --torch-device cuda`) and measures; `python bench/run_all.py --render --gpu_json '
                'gpu.json` then adds its figures to this report.']
    tests = gpu.get('tests')
    lines = [f'{gpu["device"]}, torch {gpu.get("torch", "?")}, measured {gpu.get("date", "?")} '
             '(`python bench/gpu_bench.py --tests`); every ratio compares variants that took turns in that run.', '']
    if 'launch_us' in gpu:
        lines += [f'One tiny kernel launched from Python took {gpu["launch_us"]:.1f} us on that machine.']
        profiles = {alg: r['profile'] for alg, r in gpu['algs'].items() if 'profile' in r}
        lines += [f'Eager {alg} (torch.profiler, {p["updates"]} updates): {p["kernels"]:.0f} kernels and copies '
                  f'per update, the GPU busy {p["busy_ms"]:.2f} ms of the '
                  f'{1e3 / gpu["algs"][alg]["updates_per_s"]["eager (as shipped)"]:.1f} ms an update takes (timed '
                  'below, without the profiler).' for alg, p in profiles.items()]
        lines += ['So an eager update on a GPU is bound by launching its kernels, not by computing them: what '
                  'CUDA graphs (`--compile` on CUDA) remove.', '']
    if tests:
        lines += [f'CUDA checks (`{tests["command"]}`): {tests["summary"]}'
                  f'{"" if tests["passed"] else " (FAILED)"}.', '']
    lines += ['| agent | variant | updates/s | vs eager | first update, s |', '|---|---|---|---|---|']
    for alg, result in gpu['algs'].items():
        speeds, eager = result['updates_per_s'], result['updates_per_s']['eager (as shipped)']
        lines += [f'| {alg} | {variant} | {rate:.1f} | x{ratio(rate, eager)} | '
                  f'{result["first_update_s"][variant]:.1f} |' for variant, rate in speeds.items()]
    lines += ['', '| agent | update | sample + update per s, numpy batches | with --buffer_on_device | ratio |',
              '|---|---|---|---|---|']
    for alg, result in gpu['algs'].items():
        for update, key in (('eager', 'learner_loop'), ('--compile', 'learner_loop_compile')):
            if key in result:
                loop = result[key]
                lines.append(f'| {alg} | {update} | {loop["host"]:.1f} | {loop["device"]:.1f} | '
                             f'x{ratio(loop["device"], loop["host"])} |')
    return lines


GPU_NOTES = """What the GPU runs said (NVIDIA H100 80GB, torch 2.11, 2026-11-24: four runs of
`bench/gpu_bench.py` on fresh machines, the last one above):
- **An eager update is bound by launches**: about 270-320 kernels per update with the GPU busy
  under 1 ms of 7-10 ms; one tiny kernel launched from Python took 15-21 us on these virtual
  machines. `--compile` records the losses and their backward pass as CUDA graphs: x2.2-3.3 the
  eager updates/s over the four runs (x1.1-1.6 without CUDA graphs), after a first update of
  3-8 s (up to 22 s without graphs). It stays opt-in: its numerics are checked against the eager
  update (test/test_torch_speedups.py), not against TF, and it compiles at every start.
- **Fused Adam** is the right default there too (foreach Adam x0.75-0.99). **`--amp`** is slower
  (x0.64-0.87): autocast adds cast kernels to an update bound by launches. **`--buffer_on_device`**
  changes nothing measurable (x0.77-1.11 over the runs, eager or compiled): a batch's copy is a
  few transfers, the gather on the device a few launches.
- **The CUDA checks** (their first run found a defect, TD3 with `--compile` on CUDA, and two
  CPU assumptions in the tests; all fixed): the CUDA-vs-CPU suite passed all 34 configurations in
  three of the four full runs. The run above failed two RRD configurations just past its 1e-5
  tolerance (rrd-sac-bc's Q_loss 3.7e-5 relative at update 1, a reward-head weight of
  rrd-dqn-image 1.2e-5 after update 7); 16 repeated runs of rrd-sac, rrd-sac-bc and
  rrd-dqn-image (58 configuration runs, sac in some) failed twice at that scale. The variation is from run to run (the RRD-SAC configurations are
  bit-for-bit repeatable on this repo's CPU with 1, 2 or 8 threads);
  `torch.use_deterministic_algorithms` neither removed it nor flagged an op, so its source, the GPU
  or the CPU reference (on all 16 cores there, an SAC update's two branches on 8 each), is not
  isolated. Since these runs the CPU reference runs one thread, where this repo's agents repeat
  their arithmetic exactly; whether that removes the variation has not been on a GPU yet. A defect
  shows far above it: a 3e-5 change to one parameter fails the next update's comparison.
"""


def measure_all(quick):
    """Every measurement of the suite, as one JSON-able dict."""
    started, load_start, clock = datetime.datetime.now(), os.getloadavg()[0], time.perf_counter()
    updates, image_updates, repeats = ('30', '5', '1') if quick else ('150', '15', '3')
    speeds = [json_run([os.path.join(BENCH, 'agent_speed.py'), '--algs', 'ddpg', 'td3', 'sac', 'dqn', 'dqn-image',
                        'rrd-ddpg', 'rrd-td3', 'rrd-sac', 'rrd-dqn', 'rrd-dqn-image', '--updates', updates,
                        '--image_updates', image_updates, '--repeats', repeats, '--threads', str(threads)])
              for threads in (1, 2)]
    levers = json_run([os.path.join(BENCH, 'levers.py'), '--algs', 'sac', 'rrd-sac', '--updates', updates,
                       '--repeats', repeats, '--threads', '1'])
    mkl = mkl_intel_path_speeds(updates, repeats)
    gpu = gpu_figures(quick)
    levers_2 = json_run([os.path.join(BENCH, 'levers.py'), '--algs', 'sac', 'rrd-sac', '--updates', updates,
                         '--repeats', repeats, '--threads', '2', '--variants', 'default (as shipped)',
                         'default, losses on one thread'])

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
    sampling, sampling_device = section('sampling', str(100_000 if quick else 1_000_000))
    memory = {label: {backend: section('memory', f'{label}:{backend}') for backend in ('torch', 'tf')}
              for label in MEMORY_RUNS}
    print('memory', memory, flush=True)
    return {'quick': quick, 'started': f'{started:%Y-%m-%d %H:%M}', 'minutes': (time.perf_counter() - clock) / 60,
            'load': [load_start, os.getloadavg()[0]], 'machine': machine(), 'speeds': speeds, 'levers': levers,
            'levers_2': levers_2, 'mkl': mkl, 'gpu': gpu,
            'e2e': e2e, 'atari': atari, 'sampling_ms': sampling,
            'sampling_device_ms': sampling_device, 'memory': memory}


def verdict(value, target, floor=None):
    if value >= target:
        return f'{value:.2f}: reached (>= {target})'
    if floor is not None and value >= floor:
        return f'{value:.2f}: above the {floor} floor, short of {target}'
    return f'{value:.2f}: missed (target {target}' + (f', floor {floor})' if floor else ')')


def speed_targets(speeds, label=''):
    """Target rows for SAC and RRD-SAC updates/s in agent_speed results (`label` names a variant)."""
    rows = []
    for result in speeds:
        for alg in ('sac', 'rrd-sac'):
            r = result['algs'][alg]
            rows.append(f'| {alg.upper()} updates/s torch/TF, {result["threads"]} thread(s){label} | '
                        f'{verdict(r["torch"] / r["tf"], 1.0, 0.9)} | {verdict(r["torch_cpu"] / r["tf_cpu"], 1.0, 0.9)} |')
    return rows


def targets(results):
    lines = ['| target | wall clock | per CPU second |', '|---|---|---|', *speed_targets(results['speeds']),
             *speed_targets(results.get('mkl', {}).get('speeds', ()), ', opt-in MKL Intel path')]
    e2e = results['e2e']
    lines.append(f'| end-to-end RRD-SAC HalfCheetah torch/TF | '
                 f'{verdict(e2e["torch"]["steps_per_s"] / e2e["tf"]["steps_per_s"], 1.0)} | |')
    for alg, r in results['atari'].items():
        if r.get('tf'):
            lines.append(f'| Atari {"RRD-DQN" if alg == "rrd" else "DQN"} learner env steps/s torch/TF | '
                         f'{verdict(r.get("torch", 0) / r["tf"], 0.9)} | |')
    return lines + gpu_targets(results.get('gpu', {}))


def gpu_targets(gpu):
    """The GPU rows: the CUDA checks, and RRD-SAC eager vs --compile with and without CUDA graphs."""
    if 'algs' not in gpu:
        return ['| GPU: CUDA checks pass; RRD-SAC eager vs --compile vs --compile + CUDA graphs | not measured '
                '(no GPU; see the GPU section) | |']
    tests = gpu.get('tests')
    rows = [f'| GPU: CUDA checks (`pytest --torch-device cuda`) | '
            f'{(("passed: " if tests["passed"] else "FAILED: ") + tests["summary"]) if tests else "not run"} | |']
    speeds = gpu['algs'].get('rrd-sac', {}).get('updates_per_s')
    if speeds:
        names = ('eager (as shipped)', '--compile without CUDA graphs', '--compile (CUDA graphs)')
        figures = ' / '.join(f'{speeds[name]:.0f}' if name in speeds else 'n/a' for name in names)
        if names[2] in speeds:
            figures += f' (x{ratio(speeds[names[2]], speeds[names[0]])} with CUDA graphs)'
        rows.append(f'| GPU: RRD-SAC updates/s, eager / --compile / --compile + CUDA graphs | {figures} | |')
    return rows


NOTES = """## How the PyTorch update was made faster, and what is left

The default path (checked against TF by test/test_parity.py, against the plain form and the
one-thread update by test/test_torch_speedups.py, and the traced update against the eager one by
test/test_torch_trace.py):
- **Traced update** (`--traced_update`, on by default on a CPU; utils/torch_trace.py): the first
  update of each kind (per batch layout) is recorded with `make_fx` as the list of aten operations
  its losses and `autograd.grad` ran; later updates replay that list under `no_grad`, with no
  autograd graph, saved tensors or engine. The replay is those same operations in the same order,
  so it is the eager update bit for bit (checked when recorded, at the 1st, 10th and 100th replay
  and every 1000th; a loss that reads a tensor's value in Python or changes the agent's tensors
  in place, or a replay that differs at a check, runs eagerly with one log line). Three rewrites of the
  recorded list keep the arithmetic: autograd's detach/alias views dropped, ReLU in place where it
  alone reads a product, and every op called through torch's Python binding (~1 us less than
  through its operator overload). The recording stands as that update and costs about as much
  again (image RRD-DQN at its defaults: a first update of 4.4 s against 2.0 s eager); each
  recorded graph keeps ~2 MB. Alone
  over the eager default (levers table: "default, eager" against "default"): x1.14 / x1.10 on
  SAC / RRD-SAC with 1 thread and x1.13 / x1.11 with 2 in a separate `bench/levers.py` run, and
  x1.18 / x1.17 in this one. It is what the hand-derived gradients below reach, without a second
  copy of the losses. Where a replay would not follow the update (Python state in a loss, forward
  hooks), `--traced_update False` runs eagerly.
- **One backward pass** over all losses. A policy loss reads the critics through detached weights
  (`action_value` of the critics, `input_gradient_mlp`), so each loss reaches only its own
  optimiser's parameters and one `autograd.backward` gives every optimiser exactly its gradients,
  all from the pre-update parameters (the simultaneous step of the TF graph).
- **Gradients only where needed**: the critic's first-layer kernel is split into its observation
  and action columns in the policy loss, so backward computes the thin action-column product only.
- **Fused Adam**: `step_optimizers` runs one fused Adam kernel per parameter group (CPU and CUDA;
  TF's epsilon rule as AdamTF, same state and checkpoint layout), without torch.optim's per-call
  Python work. The foreach Adam it replaces allocated temporaries over every tensor; on the Atari
  networks' 4M-parameter dense layer the fused step is about 3-4x faster.
- **Two branches with 2+ threads** (`--parallel_losses`, on by default on a CPU) for updates with
  a policy beside the critic (DDPG, SAC, RRD over them): the critic's losses and backward pass run
  on a second thread while the calling thread runs the policy's (and the RRD reward net's), each
  with half the intra-op threads; then every optimiser steps. The branches touch disjoint
  parameters and the losses' noise is drawn first in the serial order, so the update is bit for
  bit the one-thread update (tested). This is TF's inter-op parallelism done by hand; it also
  stops torch's OpenMP threads from spinning on small ops (less CPU per update, table above).
  Updates with one branch (DQN, TD3's separate critic and policy steps, and RRD over those: the
  reward net alone is too small a branch, RRD-TD3's critic step ran x0.66 split) give every thread
  to intra-op work; each agent keeps its thread setting for every update (resizing the OpenMP
  team between updates left it spinning). With the traced update the two branches still beat
  the serial update on a quiet machine: x1.11 (SAC) and x1.06 (RRD-SAC) in a separate
  `bench/levers.py --threads 2` run (the 2-thread lever table above ran on a loaded machine).
  When every update had one intra-op thread per branch,
  DQN read 0.67 and TD3 0.58 of TF with 2 threads; with all threads to them, 0.93-0.99 and
  0.88-0.97 (this run and a separate agent_speed.py run).
- **Atari frames channels-last in memory**: the replay buffer samples frame stacks as
  channels-last views of a channels-first gather, so the conv torso's NCHW view of them was
  plain NCHW in memory and every convolution took oneDNN's NCHW path (first layer forward 4.3 vs
  2.6 ms, forward + backward 9.4 vs 5.6 ms at batch 32; the three layers 28.7 vs 23.1 ms). The
  agent now makes the transposing copy on the uint8 frames, once per batch when it converts it
  (0.6 ms for a batch, 1.5x faster than converting and transposing floats in one pass): the
  Atari DQN learner's update went from 59.0 to 52.9 ms against TF's 48.4 (bench/atari_bench.py,
  one run each). TF's feed makes the same copy. The benchmark's
  image batches now have the buffer's layout (before, they were contiguous channels-last, which
  hid this: image DQN updates read 0.94 of TF here while the learner read 0.81-0.86).
- **Atari 'SAME' padding without padded copies**: TF pads the first and third conv layers evenly
  (passed to the convolution since the last round: image DQN x1.04, image RRD-DQN x1.07 updates/s)
  but the second unevenly (1 before, 2 after), which torch's convolution cannot do, so that layer
  padded a copy of its input (zero-fill, copy, and a larger input gradient). The torso now runs
  on mirrored frames with mirrored kernels: mirrored, the odd pixel comes first, an even padding
  gives exactly TF's windows, and the features are mirrored back (`SameConv2d.forward_mirrored`;
  equal to TF's conv up to rounding, tested per layer shape and by the parity suite). Atari DQN
  learner update 55.2 -> 52.9 ms in an A/B in one process (bench/atari_bench.py's loop).
- **Thin products in the orientation MKL is fast at**: the action columns of a critic's first
  layer (the policy loss's input gradient) are a contiguous [in, out] copy, so that product has a
  transposed operand instead of a strided column slice: 80 -> 32 us for the [256, 256] x [256, 6]
  product, ~55 us less per critic read by a policy loss.
- **No host sync per update on an accelerator**: the logger sums losses that live on a device
  there (float64) and reads each sum once per cycle; it read every loss after every update, which
  on CUDA waits for the device each time. The CPU path is unchanged. Checked on an H100 with
  `torch.cuda.set_sync_debug_mode('warn')`: no synchronizing call in SAC's or RRD-SAC's update.
- **Less Python around the update**: the target update's tensors are collected once (walking the
  modules for them took ~30 us per update) and gradients are cleared directly rather than through
  `zero_grad` (~10 us per optimiser): 60-70 us less per SAC or RRD-SAC update, ~20 us per DQN
  update, timed on those functions alone (under 1% of an update, below the noise of the tables).
- Already in place before: alpha kept as a tensor (no `.item()` in the loop), one zero-copy
  `as_tensor` per batch key, `torch._foreach_lerp_` for the Polyak update, and the conv weights
  left contiguous (channels-last weights measured x0.96-1.02).
- **Threads**: `--threads N` (0: all cores) sets torch's intra-op threads and TF's intra/inter-op
  pools. OpenMP's wait policy is left at its default: `OMP_WAIT_POLICY=PASSIVE` (idle threads sleep)
  made torch with 2 threads 5x faster on a loaded machine (SAC 10.8 -> 52 updates/s) but 2.6x
  slower on a quiet one (SAC 147.5 -> 56.3 updates/s: torch/TF 0.70 -> 0.31), and a run on a
  shared machine is better off with `--threads 1` anyway.

Opt-in: `--amp` (bfloat16 autocast of the losses' forward passes; AVX512-BF16 matmuls) and
`--compile` (torch.compile of the losses; CUDA graphs via mode "reduce-overhead" on CUDA). Only the
losses are compiled: backward runs through the compiled graph, the Adam step stays eager, so the
step counts and epsilons that change every update never cause a recompilation (asserted with
dynamo's error_on_recompile in test/test_torch_speedups.py). With `--compile` the losses stay on
one thread.

Measured and not shipped (rows above, and `python bench/twin_critics.py`):
- **Stacked twin critics** (both critics' weights in one [2, ...] tensor per layer, one product
  per layer): x0.84 with 1 thread, x0.97 with 2 for a critic loss's forward + backward at
  HalfCheetah sizes. It would also change the q1/q2 checkpoint and weight-transfer layout.
- **Fused MLP** (oneDNN's fused linear + bias + ReLU, TF's kernel, and one autograd node per MLP
  with a hand-written backward): over three runs of this suite and a separate A/B, x0.97-1.12 on
  SAC and x0.96-1.03 on RRD-SAC against the default: not a clear gain, and it rests on a private
  torch op (`torch.ops.mkldnn._linear_pointwise`).
- **Flush denormals** (TF's executor runs with flush-to-zero): x0.97-1.05, noise.
- **Hand-derived gradients** (`bench/hand_gradients.py`, SAC and RRD-SAC): the whole update with
  every gradient written out and no autograd (same losses, noise and fused Adam step; checked
  against autograd's gradients, equal within 1e-5 relative). Over the eager default: x1.11-1.23
  on SAC and x1.13-1.18 on RRD-SAC across three earlier runs of this suite, and x1.18 / x1.14 in a
  run with MKL's Intel code path (below), 0.93 / 0.98 of TF. That located the rest of the gap in
  the autograd engine, which the traced update now leaves out.
  Split per SAC update (1 thread, min of 5 rounds of 50 updates on the same batches): the losses'
  forward 5.33 ms with autograd's graph and 4.87 ms without it, backward 4.95 ms; the whole
  forward + backward hand-derived 8.64 ms against 10.29 (RRD-SAC: 9.86 against 11.49). Fewer autograd nodes do not get there: one node per MLP
  and one for the squashed-Gaussian head, both with the same hand-written backward and the losses
  untouched, measured x0.94-1.04 in repeated A/Bs. Not shipped: every loss would exist twice, as
  the readable loss and as its derivative, and a researcher who edits a loss would have to edit
  the derivative too (or, if the path checked itself against autograd at start-up, be stopped by it).
  The traced update (above) now takes most of this from autograd itself: against its
  x1.18 / x1.17, hand-derived gradients read x1.11 / x1.24 over the eager default in this run.
- In-place ReLU in the eager update x0.995 (x0.99 / x1.03 on SAC / RRD-SAC in a later A/B; the
  traced update's replay now runs ReLU in place, where no autograd node needs its input); `--compile` with
  inductor's C++ wrapper x0.86 (plain x0.85-0.96); dynamo with its graph-only backends, which
  replay autograd's traced forward and backward without inductor's kernels: aot_eager x0.89,
  eager x0.91 on SAC.
- **oneDNN for fp32 products** (`torch.backends.mkldnn.matmul.fp32_precision = 'bf16'` sends
  them to oneDNN on a CPU with bf16 instructions; without AMX, as here, oneDNN still computes
  them in fp32: 2-4e-5 off float64 on 256-wide products, as MKL): faster where MKL's AMD path is
  slow (critic first layer, input gradient 79 -> 54 us, weight gradient 90 -> 68 us; 256^3 332 ->
  312 us), slower on the biased forward product (36 -> 58 us) and on one-column ones (7 -> 28 us):
  SAC x0.89, RRD-SAC x0.95. It would also compute in bf16 on CPUs with AMX.
- **Allocator page faults**: 140-200 minor page faults per SAC update (glibc hands freed memory
  back to the system and the next update faults it in again); with `mallopt` thresholds that keep
  it (0 faults) the update time moved within noise (SAC and image DQN, A/B pairs of processes).
- **Rebalanced SAC branches** (2 threads): alone on one thread SAC's policy branch takes 4.86 ms
  and its critic branch 5.65 ms, which bounds a two-branch update at ~168 updates/s; the default
  makes 158-162, within ~5% of it. Handing the critic branch pi(obs_next) from a policy pass over
  obs and obs_next together (so the critic branch starts with its own forward passes) measured
  x0.90 in an A/B. What is left with 2 threads is each branch's one-thread efficiency.
- **First-layer weight gradients in the faster orientation**: for a [256, 23] kernel MKL computes
  g^T x in 92 us and x^T g in 43 us, and autograd picks the first for `nn.Linear`'s [out, in]
  layout. A custom autograd node for thin first layers saves 26 us per critic layer (23 inputs)
  and nothing for the policy's (17): its own overhead takes the rest. Storing kernels [in, out]
  as TF does saves more (125 vs 182 us for the critic's first layer forward + backward) but
  changes every checkpoint's layout; both are left for now (~1-2% of an update).

**MKL's code path on AMD CPUs** (opt-in: `python tools/mkl_intel_path.py`, then
`LD_PRELOAD=.../libmkl_intel_path.so`; the section above). torch does fp32 products with MKL,
which selects its kernels by CPU vendor and runs slower ones on this AMD EPYC than its AVX-512
allows; a preloaded one-line library that tells MKL it runs on an Intel CPU lets it choose by
instruction set. One thread, best of 5 x 200 calls, separate processes: a [256, 256] x [256, 6]
product 79 -> 27 us, the critic's first-layer weight gradient ([256, 256]^T x [256, 23]) 90 ->
41 us, a 256^3 product 332 -> 311 us, the 1024^3 GEMM rate 86-96 -> 104-109 GFLOP/s; SAC and
RRD-SAC updates 3-25% faster across runs (the table above; noisy, each ratio from its own run). TF uses
oneDNN, which has no vendor check, so this is part of why the arithmetic of the two backends
differs on this machine. Not the default: it overrides a vendor's dispatch decision with a
compiled shim, which a run cannot do for itself (the library must be preloaded before torch
starts); results stay equal up to fp32 rounding (tested).

Where the fp32 gap comes from (RRD-SAC, 1 thread, torch profiler vs TF's step stats): one update
is 56-58 matmuls; the 20 of size 256^3 dominate. TF runs them in 300-356 us each with bias-add and
ReLU fused into the forward ones (8.1 ms of its ~10 ms in matmuls); torch's MKL takes 331-345 us
each, then ReLU and bias are separate passes (running the update without ReLU is x1.06-1.10
faster), about 8.6 ms + 1 ms. On top, eager execution costs a fixed ~2.1 ms per update (Python,
dispatch, autograd) against ~1.2 ms for TF's graph executor: measured with 8-unit hidden layers,
where the matmuls cost nothing (torch 484, TF 850 updates/s). bf16 (`--amp`) halves the matmul
time and closes the gap on this CPU, at the cost of bf16 rounding.

The same at the size of one critic (23 -> 256 -> 256 -> 1, batch 256, forward + every weight
gradient; min / median of 30 interleaved rounds in one process): the products alone take 1.19 ms;
the products with bias, ReLU and their gradients written out by hand (no autograd) 1.20 / 1.24 ms;
the same as one autograd node with that hand-written backward 1.31-1.41 / 1.41-1.55 ms (the call
into the autograd engine alone is 60-130 us); eager autograd 1.43-1.46 / 1.55 ms; TF 1.29 ms
(one session call, the gradients fetched). So the arithmetic is at parity and the gap is the
bookkeeping around it: about 15-20% of a network's forward + backward, per network, which a
graph runtime removes (the traced update replays autograd's recorded operations without it;
`torch.compile` on this CPU: 1.48 ms for this network, slower than eager). The layout of the operands matters only at the thin ends (the first-layer
weight gradients, above under measured and not shipped).

Run to run, on this shared virtual machine, a torch/TF ratio moves by up to about +-0.08 (SAC with
one thread read 0.84, 0.71 and 0.77 on three quiet runs of this suite on the same default path, and
0.72 on the next, whose TF figures moved by -6% to +31% against the run before), and a lever's
effect by about +-0.06; within one run the backends and variants take turns on the same batches, so
compare figures within a run.
"""


def render(results):
    quick, (load_start, load_end), speeds = results['quick'], results['load'], results['speeds']
    e2e, memory = results['e2e'], results['memory']
    return '\n'.join([
        '# Benchmark results: PyTorch backend vs TensorFlow reference', '',
        f'Written by `python bench/run_all.py{" --quick" if quick else ""}` on {results["started"]} in '
        f'{results["minutes"]:.0f} minutes (raw figures: bench/RESULTS.json).', '',
        f'Machine: {results["machine"]}.', '',
        f'Load average {load_start:.1f} at the start and {load_end:.1f} at the end: other processes shared the '
        'cores, so every figure comes from the two backends taking turns on the same work in one run, best of '
        'the runs; read the ratios, and prefer the per-CPU-second ratios (time this process actually ran) when the '
        'machine is loaded.', '',
        '## Targets (issue 10)', '', *targets(results), '',
        '## Update speed (same batches for both backends; learner-shaped updates incl. target update)', '',
        *speed_table(speeds, results.get('gpu', {})), '',
        'FLOP bound: matmul + convolution FLOPs of one update (counted by torch, forward and backward) '
        f'at this machine\'s fp32 GEMM rate per core, measured in the same run ({speeds[0]["gemm_gflops"]:.0f} '
        'GFLOP/s per CPU second, 1024^3 products); "of bound" is the share of it each backend reaches per CPU '
        'second it runs.', '',
        '## Levers: what each PyTorch speed-up gives alone (1 thread)', '', *lever_table(results['levers']), '',
        '## Lever with 2 threads: the critic\'s losses on a second thread (default) vs the serial update', '',
        *lever_table(results['levers_2']), '',
        '## Opt-in on AMD CPUs: MKL\'s Intel code path (tools/mkl_intel_path.py)', '',
        'torch runs fp32 products through MKL, which takes slower kernels on non-Intel CPUs; a preloaded '
        'one-line library lets it choose by the CPU\'s instruction sets (TF uses oneDNN and is unaffected). '
        'Each row\'s ratio comes from its own run, TF and torch taking turns on the same batches '
        '(`LD_PRELOAD=... python bench/agent_speed.py`).', '', *mkl_section(results), '',
        '## End-to-end RRD-SAC on HalfCheetah (env step + acting + one update per step, 1 thread)', '',
        '| backend | env steps/s | env + acting ms/step | sample + update ms/update |', '|---|---|---|---|',
        *[f'| {b} | {r["steps_per_s"]:.1f} | {r["env_ms"]:.2f} | {r["update_ms"]:.2f} |' for b, r in e2e.items()],
        f'| torch/TF | **{ratio(e2e["torch"]["steps_per_s"], e2e["tf"]["steps_per_s"])}** | | |',
        *([f'| torch --buffer_on_device / torch (CPU device: no transfer to save) | '
           f'x{ratio(e2e[DEVICE_RUN]["steps_per_s"], e2e["torch"]["steps_per_s"])} | | |'] if DEVICE_RUN in e2e else []),
        '',
        '## Atari learner (Pong, 100 env steps + 25 updates of batch 32 per iteration, 1 thread)', '',
        '| agent | TF env steps/s | torch env steps/s | torch/TF |', '|---|---|---|---|',
        *[f'| {"RRD-DQN" if alg == "rrd" else "DQN"} | {r.get("tf", 0):.1f} | {r.get("torch", 0):.1f} | '
          f'**{ratio(r.get("torch", 0), r.get("tf", 0))}** |' for alg, r in results['atari'].items()], '',
        '## Replay buffer and memory', '',
        f'Sampling latency (RRD buffer, {"100k" if quick else "1M"} HalfCheetah transitions, batch 256 + RRD 4x64, '
        f'median): {results["sampling_ms"]:.3f} ms, the same for both backends (the buffer is numpy)'
        + (f'; {results["sampling_device_ms"]:.3f} ms gathered by torch from a device ring on the CPU '
           '(`--buffer_on_device`\'s code path, without a GPU)' if results.get('sampling_device_ms') else '')
        + '.', '',
        '| run (synthetic episodes, then 50 updates; one subprocess each) | TF peak RSS MiB | torch peak RSS MiB | '
        'torch/TF |', '|---|---|---|---|',
        *[f'| {label} | {r["tf"]:.0f} | {r["torch"]:.0f} | {ratio(r["torch"], r["tf"])} |' for label, r in memory.items()],
        '', NOTES, '## GPU', '', *gpu_section(results.get('gpu', {})), '',
        GPU_NOTES if 'algs' in results.get('gpu', {}) else ''])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--quick', action='store_true', help='few updates everywhere: checks the suite runs')
    parser.add_argument('--output', default=os.path.join(BENCH, 'RESULTS.md'))
    parser.add_argument('--render', action='store_true', help='only rewrite the report from its .json twin')
    parser.add_argument('--gpu_json', help="gpu_bench.py's --json output from a GPU machine, for the GPU column and "
                                           'section (where torch sees CUDA, the suite runs gpu_bench.py itself)')
    parser.add_argument('--section', nargs=2, metavar=('NAME', 'ARG'), help=argparse.SUPPRESS)
    options = parser.parse_args()
    try:
        gpu = read_gpu_json(options.gpu_json) if options.gpu_json else None
    except ValueError as error:
        parser.error(str(error))
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
    raw_path = os.path.splitext(options.output)[0] + '.json'
    if options.render:
        with open(raw_path) as file:
            results = json.load(file)
    else:
        results = measure_all(options.quick)
    if gpu is not None:
        results['gpu'] = gpu
    if gpu is not None or not options.render:
        with open(raw_path, 'w') as file:
            json.dump(results, file, indent=1)
    with open(options.output, 'w') as file:
        file.write(render(results))
    print(f'wrote {options.output} and {raw_path}')


if __name__ == '__main__':
    main()
