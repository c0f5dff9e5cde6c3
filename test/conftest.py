"""Test-session settings: one BLAS/OpenMP thread per process, and the torch agents' device.

CI machines have 2 cores; torch's OpenMP threads spin badly when another process holds the
other core (a SAC step went from ~4 ms to ~400 ms), so every test and the training
subprocesses it starts use one thread. Set before any test module imports torch.

`--torch-device cuda` (on a machine with a GPU) runs the torch agents of the parity suite, the
speed-up checks and the device-buffer tests on CUDA, so the parity suite compares the CUDA port
with the TF reference on the CPU, and enables test_cuda_parity.py (the CUDA port against the CPU
port, without TF). The default, and every CI run, is the CPU.
"""
import os

import pytest

os.environ['OMP_NUM_THREADS'] = '1'
os.environ['MKL_NUM_THREADS'] = '1'


def pytest_addoption(parser):
    parser.addoption('--torch-device', default='cpu', choices=('cpu', 'cuda'),
                     help='device of the torch agents in the parity, speed-up and device-buffer tests (default: cpu)')


def pytest_configure(config):
    if config.getoption('--torch-device') == 'cuda':
        import torch
        if not torch.cuda.is_available():
            raise pytest.UsageError('--torch-device cuda: torch sees no CUDA device here; '
                                    'run on a GPU machine, or leave the option out to test on the CPU')


@pytest.fixture
def torch_device(request):
    """'cpu' or 'cuda': where the torch agents of device-aware tests run (--torch-device)."""
    return request.config.getoption('--torch-device')


@pytest.fixture
def fresh_run_modules(tmp_path):
    """A function that trains a whole tiny RRD-SAC run (agent, updates, TensorBoard, checkpoint) of
    one backend in a fresh interpreter and returns the top-level modules it imported: what a user
    with only that backend's framework installed would need."""
    import json
    import subprocess
    import sys

    def run(use_pytorch):
        logdir = tmp_path / ('torch' if use_pytorch else 'tf')
        code = f"""
import json, sys
import train
train.main(['--env=Swimmer-v2', '--alg=rrd', '--basis_alg=sac', '--cuda=False', '--epochs=1', '--cycles=1',
            '--iterations=2', '--timesteps=50', '--warmup=50', '--batch_size=16', '--train_batches=2',
            '--rrd_batch_size=16', '--rrd_sample_size=4', '--test_rollouts=1', '--test_timesteps=50',
            '--buffer_size=500', '--save_model=True', '--use_pytorch={use_pytorch}', '--logdir', {str(logdir)!r}])
print(json.dumps(sorted({{name.split('.')[0] for name in sys.modules}} | set(sys.modules))))
"""
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        result = subprocess.run([sys.executable, '-c', code], cwd=tmp_path, env={**os.environ, 'PYTHONPATH': root},
                                capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr[-3000:]
        assert len(list((logdir / 'board').glob('*/events.out.tfevents.*'))) == 1
        assert len(list((logdir / 'models').glob('*/epoch0*'))) == 1
        return set(json.loads(result.stdout.splitlines()[-1]))
    return run
