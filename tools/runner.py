"""Running several `train.py` processes side by side and reading back their test curves.

Shared by the learning checks and the run comparison: each run is its own process with one BLAS
thread (on a small machine extra OpenMP threads only spin), `parallel` at a time, its console
output in `<logdir>/<tag>.out`.
"""
import glob
import os
import signal
import subprocess
import sys
import time

import numpy as np

TRAIN = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'train.py')


def run_parallel(runs, logdir, parallel):
    """Run `{tag: train.py flags}` (each gets --tag and --logdir); exit with a message if any fails."""
    env = dict(os.environ, OMP_NUM_THREADS='1', MKL_NUM_THREADS='1', TF_NUM_INTRAOP_THREADS='1',
               TF_NUM_INTEROP_THREADS='1')
    os.makedirs(logdir, exist_ok=True)
    running, started = [], time.time()
    try:
        for tag, flags in runs.items():
            argv = [sys.executable, TRAIN, *flags, f'--tag={tag}', f'--logdir={logdir}']
            with open(os.path.join(logdir, f'{tag}.out'), 'w') as log:
                running.append(subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env))
            while sum(proc.poll() is None for proc in running) >= parallel:
                time.sleep(1)
        for proc in running:
            proc.wait()
    except KeyboardInterrupt:  # the runs checkpoint and stop (a terminal's Ctrl-C reaches them too)
        for proc in running:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        for proc in running:
            proc.wait()
        print(f'stopped; each run kept its checkpoint: continue one with python train.py --resume '
              f'<run> --logdir {logdir} (runs in {os.path.join(logdir, "models")})', file=sys.stderr)
        sys.exit(130)
    print(f'{len(runs)} runs in {time.time() - started:.0f} s wall')
    failed = [tag for tag, proc in zip(runs, running) if proc.returncode]
    if failed:
        sys.exit(f'run(s) {", ".join(failed)} failed; see their .out files in {logdir}')


def run_npz(logdir, tag, env):
    """The test-return npz of the newest run tagged `tag` (`<logdir>/rews/<tag>/<run>/<env>.npz`)."""
    paths = glob.glob(os.path.join(glob.escape(logdir), 'rews', glob.escape(tag), '*', f'{env}.npz'))
    if not paths:
        raise FileNotFoundError(f'no {env}.npz of a run tagged {tag!r} under {logdir}/rews')
    return max(paths, key=os.path.getmtime)


def load_curves(logdir, tags, env):
    """(steps of the first run, [runs, evaluations] test returns) from the runs' npz files."""
    runs = [np.load(run_npz(logdir, tag, env)) for tag in tags]
    return runs[0]['steps'], np.stack([run['rewards'] for run in runs])
