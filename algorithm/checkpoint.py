"""Backend-free checkpoint helpers: metadata checks and atomic writes shared by both backends."""
import contextlib
import os
import shutil
import tempfile

FORMAT_VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint is missing, unreadable or does not fit the agent asked to load it."""


def checkpoint_meta(args, backend):
    """What a checkpoint must agree on with the agent that loads it."""
    return {
        'format': FORMAT_VERSION,
        'backend': backend,
        'alg': args.alg,
        'basis_alg': getattr(args, 'basis_alg', args.alg) if args.alg in ('rrd', 'ircr') else args.alg,
        'obs_dims': [int(d) for d in args.obs_dims],
        'acts_dims': [int(d) for d in args.acts_dims],
        'obs_normalization': bool(args.obs_normalization),
        'dueling': bool(getattr(args, 'dueling', False)),
    }


def check_meta(saved, expected, path):
    """Raise one clear CheckpointError naming every field where the file and the agent disagree."""
    if not isinstance(saved, dict):
        raise CheckpointError(f'{path} has no metadata: it was not written by this repo\'s save_model')
    diffs = [f'{key}: checkpoint has {saved.get(key)!r}, this run has {value!r}'
             for key, value in expected.items() if key != 'backend' and saved.get(key) != value]
    if diffs:
        raise CheckpointError(f'checkpoint {path} does not match this run ({"; ".join(diffs)}); '
                              'pass the flags it was trained with or pick another checkpoint')


@contextlib.contextmanager
def atomic_write(path):
    """Yield a temporary path next to `path`; move it into place only if the block succeeds.

    Works for a file or a directory (TF savers write several files), so a crash mid-save never
    leaves a half-written checkpoint where an earlier good one was.
    """
    path = os.path.abspath(path)
    directory = os.path.dirname(path)
    os.makedirs(directory, exist_ok=True)
    tmp_dir = tempfile.mkdtemp(prefix='.tmp-ckpt-', dir=directory)
    tmp_path = os.path.join(tmp_dir, os.path.basename(path))
    try:
        yield tmp_path
        if os.path.isdir(tmp_path) and os.path.isdir(path):
            old = path + '.old'
            shutil.rmtree(old, ignore_errors=True)
            os.replace(path, old)
            os.replace(tmp_path, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp_path, path)
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)
