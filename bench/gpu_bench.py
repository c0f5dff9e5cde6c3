"""The PyTorch port on one device, a GPU when there is one: SAC and RRD-SAC updates/s of the
shipped eager update against each GPU lever, and the learner's sample + update with and without
--buffer_on_device.

Variants, each the shipped agent with one change, taking turns on the same batches (already on
the device, so the rows compare updates, not transfers):
- eager (as shipped): fused Adam (CUDA's fused kernel on a GPU), no compilation;
- foreach Adam: each optimiser's own AdamTF.step with torch's foreach Adam instead;
- --amp: bfloat16 autocast;
- --compile without CUDA graphs: torch.compile's default mode (inductor);
- --compile: as shipped, which on CUDA adds CUDA graphs (mode 'reduce-overhead'); on a CPU it is
  the row above, so it is left out there.
The timed loop reads nothing back (a run's logger reads its sums once per cycle), so a GPU runs
ahead of Python; each timing ends with a synchronize. Each variant's first update (compilation,
CUDA-graph recording) is timed apart. Then the learner's loop without the env: `sample_batch`
from an RRD-sized buffer of `--buffer_size` transitions plus one update, numpy batches copied to
the device per update against the gather from the ring's copy on the device (on CUDA also with
--compile, where the update itself is fast). On CUDA, the cost of one kernel launch from Python
and the eager update under torch.profiler (kernels per update, the GPU's busy time) say what
bounds the eager update. Last, every agent's eager updates/s (the CPU report's GPU column).

With --tests it first runs the test suite's CUDA checks (`pytest --torch-device cuda`: the port
on CUDA against the port on the CPU, the speed-ups and opt-in flags against the eager update, the
device buffer against the numpy one, and the TF parity suite where TF is installed) and records
their summary line. bench/run_all.py runs all of it on a machine with CUDA, or reads this
script's --json output from one (--gpu_json).

Without CUDA it measures torch's CPU device (no CUDA-graph row), with the eager update CUDA runs
(`--traced_update False`: the replay applies on a CPU only): that is how it is checked on
machines without a GPU, where its figures say nothing about one.

    python bench/gpu_bench.py [--tests] [--device cuda] [--algs rrd-sac sac] [--updates 300] [--json out.json]
"""
import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from algorithm import create_agent  # noqa: E402
from algorithm.replay_buffer import create_buffer  # noqa: E402
from bench import levers  # noqa: E402
from bench.agent_speed import ALGS, learner_update, make_args, make_batches  # noqa: E402
from bench.buffer_bench import fill  # noqa: E402


CUDA_TESTS = ('test/test_cuda_parity.py', 'test/test_parity.py', 'test/test_torch_speedups.py',
              'test/test_device_buffer.py')


def cuda_tests():
    """The test suite's CUDA checks: {'command', 'summary' (pytest's last line), 'passed'}."""
    command = ['-m', 'pytest', '-q', '-p', 'no:logging', '--torch-device', 'cuda', *CUDA_TESTS]
    result = subprocess.run([sys.executable, *command], capture_output=True, text=True, cwd=ROOT)
    lines = (result.stdout.strip() or result.stderr.strip() or 'no output').splitlines()
    if result.returncode != 0:  # the failures' reports, or there is nothing to go on
        print(result.stdout[-20000:], result.stderr[-5000:], sep='\n', flush=True)
    return {'command': ' '.join(['python', *command]), 'summary': lines[-1], 'passed': result.returncode == 0}


def foreach_adam(agent):
    """Each optimiser's own AdamTF.step, with torch's foreach Adam in place of the fused kernel."""
    levers.foreach_adam(agent)

    def apply_updates(updates):
        agent.gradients(updates)
        for _, optimizer in updates:
            optimizer.step()
    agent.apply_updates = apply_updates


def compile_without_cuda_graphs(agent):
    agent.loss_functions = {name: torch.compile(getattr(agent, name), dynamic=False) for name in agent.loss_functions}
    agent.uses_cuda_graphs = lambda: False


VARIANTS = {  # name: (CLI flags, change to the built agent, CUDA only)
    'eager (as shipped)': ((), None, False),
    'foreach Adam': ((), foreach_adam, False),
    '--amp (bf16)': (('--amp',), None, False),
    '--compile without CUDA graphs': (('--compile',), compile_without_cuda_graphs, False),
    '--compile (CUDA graphs)': (('--compile',), None, True),
}


def build(alg, device, flags=(), change=None):
    eager = () if device == 'cuda' else ('--traced_update', 'False')  # as on CUDA, where no replay applies
    args = make_args(alg, 'torch', 0 if device == 'cuda' else 1, (*eager, *flags))
    args.cuda = device == 'cuda'
    agent = create_agent(args)
    if change is not None:
        change(agent)
    return agent


def synchronize(device):
    if device == 'cuda':
        torch.cuda.synchronize()


def timed(device, step, count):
    """Seconds for `count` calls of `step`, the device's queue drained at both ends."""
    synchronize(device)
    start = time.perf_counter()
    for index in range(count):
        step(index)
    synchronize(device)
    return time.perf_counter() - start


def update(agent, batch, index=0):
    """Update number `index` as the learner makes it (TD3's policy every pi_delay_freq-th), nothing
    read back: on a device the learner's logger reads its sums once per cycle."""
    learner_update(agent, batch, index, read_back=False)


def variant_speeds(alg, device, updates, warmup, repeats):
    """{variant: best updates/s}, and {variant: seconds of its first update}."""
    variants = {name: spec for name, spec in VARIANTS.items() if device == 'cuda' or not spec[2]}
    agents = {name: build(alg, device, flags, change) for name, (flags, change, _) in variants.items()}
    batches = [agents['eager (as shipped)'].to_tensors(batch) for batch in
               make_batches(agents['eager (as shipped)'].args, warmup + updates)]
    first = {name: timed(device, lambda _: update(agent, batches[0]), 1) for name, agent in agents.items()}
    best = dict.fromkeys(agents, 0.0)
    for _ in range(repeats):
        for name, agent in agents.items():
            timed(device, lambda index: update(agent, batches[index]), warmup)
            seconds = timed(device, lambda index: update(agent, batches[warmup + index]), updates)
            best[name] = max(best[name], updates / seconds)
    return best, first


def launch_microseconds(device, count=2000):
    """Microseconds per launch of a tiny kernel from Python: the floor under every eager op."""
    x = torch.zeros(256, device=device)
    return timed(device, lambda _: x.add_(1.0), count) / count * 1e6


def kernel_profile(alg, device, count=20):
    """The eager update under torch.profiler: kernels (and copies) per update and the GPU's busy
    time; `wall_ms` is the profiled update's, slowed by the profiler."""
    from torch.profiler import ProfilerActivity, profile
    agent = build(alg, device)
    batches = [agent.to_tensors(batch) for batch in make_batches(agent.args, count + 5)]
    timed(device, lambda index: update(agent, batches[index]), 5)
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as profiler:
        seconds = timed(device, lambda index: update(agent, batches[5 + index]), count)
    kernels = [event for event in profiler.events() if event.device_type == torch.autograd.DeviceType.CUDA]
    return {'updates': count, 'kernels': len(kernels) / count, 'wall_ms': seconds / count * 1e3,
            'busy_ms': sum(event.time_range.elapsed_us() for event in kernels) / count / 1e3}


def every_agent(device, updates, warmup, repeats):
    """{agent: best eager updates/s} for every agent of bench/agent_speed.py (the CPU report's
    rows), updates as the learner makes them, batches already on the device, nothing read back."""
    speeds = {}
    for alg in ALGS:
        agent = build(alg, device)
        batches = [agent.to_tensors(batch) for batch in make_batches(agent.args, warmup + updates)]
        timed(device, lambda index: update(agent, batches[index], index), warmup)
        seconds = min(timed(device, lambda index: update(agent, batches[warmup + index], warmup + index), updates)
                      for _ in range(repeats))
        speeds[alg] = updates / seconds
    return speeds


def learner_loop(alg, device, updates, warmup, repeats, buffer_size, flags=()):
    """{'host': ..., 'device': ...} best (sample_batch + update)/s from one buffer of `buffer_size`
    HalfCheetah transitions, its batches copied per update or gathered from the device ring."""
    agent = build(alg, device, flags)
    args = agent.args
    args.buffer_size = buffer_size
    buffer = create_buffer(args)
    fill(buffer, buffer_size, 1000, lambda t: np.random.randn(t + 1, *args.obs_dims).astype(np.float32),
         lambda t: np.random.uniform(-1, 1, (t, *args.acts_dims)).astype(np.float32))
    best = {'host': 0.0, 'device': 0.0}
    for _ in range(repeats):
        for mode in best:
            buffer.storage.device_ring = None  # the plain numpy buffer
            if mode == 'device':
                buffer.keep_on_device(device)
            timed(device, lambda _: update(agent, buffer.sample_batch()), warmup)
            best[mode] = max(best[mode], updates / timed(device, lambda _: update(agent, buffer.sample_batch()), updates))
    return best


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--device', choices=('cuda', 'cpu'), default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--algs', nargs='+', default=['rrd-sac', 'sac'], choices=('rrd-sac', 'sac'))
    parser.add_argument('--updates', type=int, default=300)
    parser.add_argument('--warmup', type=int, default=30)
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--buffer_size', type=int, default=1_000_000)
    parser.add_argument('--tests', action='store_true', help="first run the test suite's CUDA checks")
    parser.add_argument('--json', help='also write the results to this file')
    options = parser.parse_args(argv)
    if options.device == 'cuda' and not torch.cuda.is_available():
        parser.error('--device cuda: torch sees no CUDA device; use --device cpu')
    if options.tests and options.device != 'cuda':
        parser.error('--tests runs the CUDA checks: it needs --device cuda')
    name = torch.cuda.get_device_name() if options.device == 'cuda' else 'CPU (torch threads: 1)'
    results = {'device': name, 'torch': torch.__version__, 'date': time.strftime('%Y-%m-%d %H:%M'), 'algs': {}}

    def save():  # after every part, so a run cut short by a time limit keeps what it measured
        if options.json:
            with open(options.json, 'w') as file:
                json.dump(results, file)
    if options.tests:
        results['tests'] = cuda_tests()
        print(f'{results["tests"]["command"]}: {results["tests"]["summary"]}', flush=True)
        save()
    results['launch_us'] = launch_microseconds(options.device)
    print(f'torch {torch.__version__} on {name}; {options.updates} timed updates, best of {options.repeats}; '
          f'a tiny kernel launched from Python: {results["launch_us"]:.1f} us')
    for alg in options.algs:
        speeds, first = variant_speeds(alg, options.device, options.updates, options.warmup, options.repeats)
        sizes = options.updates, options.warmup, options.repeats, options.buffer_size
        loop = learner_loop(alg, options.device, *sizes)
        results['algs'][alg] = {'updates_per_s': speeds, 'first_update_s': first, 'learner_loop': loop}
        if options.device == 'cuda':  # where the update itself is fast, the batch's copy weighs more
            results['algs'][alg]['learner_loop_compile'] = learner_loop(alg, options.device, *sizes, ('--compile',))
            results['algs'][alg]['profile'] = kernel_profile(alg, options.device)
        eager = speeds['eager (as shipped)']
        print(f'{alg}:')
        for variant, rate in speeds.items():
            print(f'  {variant:>30}: {rate:8.1f} updates/s   x{rate / eager:.2f} vs eager   '
                  f'(first update {first[variant]:.1f} s)')
        if 'profile' in results['algs'][alg]:
            profiled = results['algs'][alg]['profile']
            print(f'  eager update under the profiler: {profiled["kernels"]:.0f} kernels and copies, the GPU busy '
                  f'{profiled["busy_ms"]:.2f} ms (profiled wall time {profiled["wall_ms"]:.2f} ms)')
        for label, key in (('', 'learner_loop'), (' with --compile', 'learner_loop_compile')):
            if key in results['algs'][alg]:
                loop = results['algs'][alg][key]
                print(f'  sample + update{label} at {options.buffer_size:,} transitions: numpy batches '
                      f'{loop["host"]:.1f}/s, --buffer_on_device {loop["device"]:.1f}/s '
                      f'(x{loop["device"] / loop["host"]:.2f})', flush=True)
        save()
    results['every_agent'] = every_agent(options.device, options.updates, options.warmup, options.repeats)
    print('eager updates/s, every agent: ' + ', '.join(f'{alg} {rate:.1f}'
                                                        for alg, rate in results['every_agent'].items()))
    save()


if __name__ == '__main__':
    main()
