"""Opt-in, for PyTorch on AMD CPUs: build the shim that lets MKL choose its kernels as on Intel.

PyTorch's x86 wheels run fp32 matrix products through Intel MKL (the TF reference uses oneDNN),
and MKL picks its code path by CPU vendor: on AMD processors it runs slower kernels than the
instruction sets the CPU reports allow. Measured on a 2-core AMD EPYC with AVX-512 (one thread):
a [256, 256] x [256, 6] product 79 vs 27 us, the critics' first-layer weight gradient 90 vs 41 us,
a 256^3 product 332 vs 311 us; SAC and RRD-SAC updates 3-25% faster across runs (bench/RESULTS.md,
a noisy shared machine). MKL asks one exported function, `mkl_serv_intel_cpu_true`, whether the
CPU is Intel's; a one-line shared library that answers yes, preloaded, makes it dispatch by the
CPU's instruction sets alone.

    python tools/mkl_intel_path.py [--output DIR]   # builds DIR/libmkl_intel_path.so (default: build/)
    LD_PRELOAD=$PWD/build/libmkl_intel_path.so python train.py ...

It needs a C compiler (`cc`), changes nothing on Intel CPUs or for TensorFlow, and leaves results
equal up to fp32 rounding (another kernel sums in another order; test/test_mkl_intel_path.py).
It is opt-in because it overrides a vendor's dispatch decision: measure it on your machine with
`LD_PRELOAD=... python bench/agent_speed.py` before a long run.
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LIBRARY = 'libmkl_intel_path.so'
SOURCE = 'int mkl_serv_intel_cpu_true(void) { return 1; }\n'


def cpu_vendor():
    """The CPU vendor string of /proc/cpuinfo ('GenuineIntel', 'AuthenticAMD'), or '' elsewhere."""
    try:
        with open('/proc/cpuinfo') as file:
            for line in file:
                if line.startswith('vendor_id'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return ''


def build(output_dir):
    """Compile the shim into `output_dir`; its path. Raises RuntimeError naming the fix."""
    compiler = shutil.which(os.environ.get('CC', 'cc')) or shutil.which('gcc')
    if compiler is None:
        raise RuntimeError('no C compiler found (cc or gcc); install one (e.g. apt install gcc) or set CC')
    os.makedirs(output_dir, exist_ok=True)
    path = os.path.join(output_dir, LIBRARY)
    with tempfile.TemporaryDirectory(dir=output_dir) as tmp:  # beside the target: os.replace stays on one filesystem
        source = os.path.join(tmp, 'mkl_intel_path.c')
        with open(source, 'w') as file:
            file.write(SOURCE)
        built = os.path.join(tmp, LIBRARY)
        result = subprocess.run([compiler, '-shared', '-fPIC', '-O2', '-o', built, source],
                                capture_output=True, text=True)
        if result.returncode:
            raise RuntimeError(f'{compiler} could not build the shim: {result.stderr.strip()[:500]}')
        os.replace(built, path)  # whole or not at all: a running process may have it preloaded
    return path


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--output', default=os.path.join(ROOT, 'build'), help='directory for the shared library')
    args = parser.parse_args(argv)
    try:
        path = build(args.output)
    except RuntimeError as error:
        sys.exit(f'error: {error}')
    vendor = cpu_vendor()
    if vendor == 'GenuineIntel':
        print(f'built {path}; this is an Intel CPU, where MKL already takes its Intel path: nothing to gain')
    else:
        print(f'built {path}; opt in per run with:\n  LD_PRELOAD={path} python train.py ...')


if __name__ == '__main__':
    main()
