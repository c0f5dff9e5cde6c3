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
