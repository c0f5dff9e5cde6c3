"""`create_agent(args)`: the one place that picks the backend and the agent class.

Backend: `args.use_pytorch` when set, else the USE_PYTORCH environment variable (1 torch,
0 TensorFlow; either may be any of true/false/yes/no/1/0, anything else is an error), else
TensorFlow when it is importable and torch otherwise. Each backend's
modules are imported only when chosen, so either framework alone is enough.
"""
import importlib
import importlib.util
import logging
import os
from argparse import ArgumentTypeError

from utils.os_utils import str2bool

logger = logging.getLogger(__name__)

BASIS_ALGS = ('dqn', 'ddpg', 'td3', 'sac')
ALGS = BASIS_ALGS + ('ircr', 'rrd')
INSTALL_HINT = {
    'torch': 'pip install -r requirements.txt (torch 2.13.0; CPU-only build: pip install torch==2.13.0 '
             '--index-url https://download.pytorch.org/whl/cpu)',
    'tf': 'pip install -r requirements-tf.txt',
}
BACKEND_NAMES = {'torch': 'PyTorch', 'tf': 'TensorFlow'}


class BackendError(RuntimeError):
    """The requested backend is not installed."""


def wants_pytorch(value, source):
    """A boolean from `args.use_pytorch` or USE_PYTORCH (true/false/yes/no/1/0); anything else is an
    error rather than a silent TensorFlow run (a script's `args.use_pytorch = 'False'` is a string)."""
    try:
        return str2bool(value)
    except ArgumentTypeError:
        raise ValueError(f'{source}={value!r} is not a boolean; set it to true/false/yes/no/1/0 '
                         f'or unset it') from None


def env_wants_pytorch():
    """The USE_PYTORCH environment variable as a boolean; None when it is unset or empty."""
    value = os.environ.get('USE_PYTORCH', '').strip()
    return wants_pytorch(value, 'USE_PYTORCH') if value else None


def _installed(backend):
    return importlib.util.find_spec('torch' if backend == 'torch' else 'tensorflow') is not None


def select_backend(args):
    """'torch' or 'tf', following args.use_pytorch, then USE_PYTORCH, then what is installed."""
    use_pytorch = getattr(args, 'use_pytorch', None)
    use_pytorch = wants_pytorch(use_pytorch, 'args.use_pytorch') if use_pytorch is not None else env_wants_pytorch()
    if use_pytorch is None:
        backend = 'tf' if _installed('tf') else 'torch'
    else:
        backend = 'torch' if use_pytorch else 'tf'
    if not _installed(backend):
        raise BackendError(f'the {BACKEND_NAMES[backend]} backend was requested but is not installed: '
                           f'{INSTALL_HINT[backend]}')
    return backend


def agent_class(alg, basis_alg, backend):
    """The agent class for an algorithm name; IRCR is its basis algorithm (its buffer does the work)."""
    if alg not in ALGS:
        raise ValueError(f'unknown algorithm {alg!r}; choose one of {", ".join(ALGS)}')
    basis = basis_alg if alg in ('rrd', 'ircr') else alg
    if basis not in BASIS_ALGS:
        raise ValueError(f'unknown basis algorithm {basis!r}; choose one of {", ".join(BASIS_ALGS)}')
    suffix = '_torch' if backend == 'torch' else ''
    cls = getattr(importlib.import_module(f'algorithm.basis_alg.{basis}{suffix}'), basis.upper())
    if alg == 'rrd':
        cls = importlib.import_module(f'algorithm.rrd{suffix}').RRD(cls)
    return cls


def create_agent(args):
    backend = select_backend(args)
    args.backend = backend
    logger.info('backend: %s', BACKEND_NAMES[backend])
    return agent_class(args.alg, getattr(args, 'basis_alg', None), backend)(args)
