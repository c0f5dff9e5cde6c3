"""Test-session settings: one BLAS/OpenMP thread per process.

CI machines have 2 cores; torch's OpenMP threads spin badly when another process holds the
other core (a SAC step went from ~4 ms to ~400 ms), so every test and the training
subprocesses it starts use one thread. Set before any test module imports torch.
"""
import os

os.environ['OMP_NUM_THREADS'] = '1'
os.environ['MKL_NUM_THREADS'] = '1'
