"""Backend-free checkpoint helpers: reading, metadata checks and atomic writes shared by both backends.

Also the run checkpoints `train.py --resume` continues from (agent, replay buffer, every RNG,
learner, tester and logger state): `save_run_checkpoint`, `run_checkpoints`, `load_run_state`.

torch is imported only inside `load_torch_payload` and the torch RNG helpers, so the TF path
stays free of it.
"""
import contextlib
import errno
import json
import os
import pickle
import random
import re
import shutil
import signal
import tempfile
import warnings
import zipfile

import numpy as np

FORMAT_VERSION = 1
META_FILE = 'meta.json'  # a TF checkpoint is a directory: this metadata beside tf.train.Saver's files
CHECKPOINT_PREFIX = 'model'


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
        'optimizer': getattr(args, 'optimizer', 'adam'),  # DQN's Adam or RMSProp: different slots
    }


# Fields added to the metadata after checkpoints were first written: a file without one predates
# it and is not checked on it.
LATER_FIELDS = ('optimizer',)


def check_meta(saved, expected, path):
    """Raise one clear CheckpointError naming every field where the file and the agent disagree."""
    if not isinstance(saved, dict):
        raise CheckpointError(f'{path} has no metadata: it was not written by this repo\'s save_model; pick a '
                              'checkpoint it wrote')
    diffs = [f'{key}: checkpoint has {saved.get(key)!r}, this run has {value!r}'
             for key, value in expected.items() if key != 'backend' and saved.get(key) != value
             and (key in saved or key not in LATER_FIELDS)]
    if diffs:
        raise CheckpointError(f'checkpoint {path} does not match this run ({"; ".join(diffs)}); '
                              'pass the flags it was trained with or pick another checkpoint')


def first_line(error):
    """The first line of an exception's message (its type name when the message is empty), for
    one-line errors."""
    lines = str(error).strip().splitlines()
    return lines[0][:200] if lines else type(error).__name__


def refuse_run_checkpoint(path, backend):
    """An agent checkpoint is expected at the folder `path`: if it is a run checkpoint folder, or a
    run folder holding some, name the agent checkpoint to load instead."""
    agent = agent_path(path, backend)
    if os.path.isfile(os.path.join(agent, META_FILE) if backend == 'tf' else agent):
        raise CheckpointError(f'{path} is a run checkpoint folder; load the agent in it: {agent}')
    checkpoints = run_checkpoints(path)
    if checkpoints:
        agent, other = agent_path(checkpoints[-1], backend), 'tf' if backend == 'torch' else 'torch'
        if os.path.exists(agent):
            raise CheckpointError(f'{path} is a run folder; load an agent checkpoint in it, such as its newest: {agent}')
        raise CheckpointError(f'{path} is a run folder of the other backend; load an agent checkpoint in it with '
                              f'--use_pytorch {other == "torch"}, such as its newest: {agent_path(checkpoints[-1], other)}')


def read_tf_meta(path):
    """The metadata of the TF checkpoint directory `path`, after checking that its files are there."""
    if not os.path.isdir(path):
        hint = (': that is a file (torch checkpoints are files, TF ones directories); load it with '
                '--use_pytorch True') if os.path.isfile(path) else '; check the --load_model path'
        raise CheckpointError(f'no TF checkpoint directory at {path}{hint}')
    refuse_run_checkpoint(path, 'tf')
    try:
        with open(os.path.join(path, META_FILE)) as file:
            meta = json.load(file)
    except (OSError, ValueError) as error:
        raise CheckpointError(f'{path} has no readable {META_FILE} ({type(error).__name__}); it was not written '
                              'by this repo\'s save_model or is corrupt: pick another checkpoint') from None
    if not os.path.isfile(os.path.join(path, CHECKPOINT_PREFIX + '.index')):
        raise CheckpointError(f'{path} lacks {CHECKPOINT_PREFIX}.index: the TF checkpoint is corrupt or '
                              'incomplete; pick another checkpoint')
    return meta


def load_torch_payload(path, map_location='cpu'):
    """The dict a torch `save_model` wrote to `path`.

    torch.save writes a zip archive, so an empty file, random bytes or a bare pickle is rejected
    before torch reads it, and torch's own messages (which for foreign files suggest
    weights_only=False, i.e. running code from the file) never reach the user.
    """
    if os.path.isdir(path):
        refuse_run_checkpoint(path, 'torch')
        raise CheckpointError(f'{path} is a directory, not a torch checkpoint file (TF checkpoints are '
                              'directories); load it with --use_pytorch False')
    if not os.path.isfile(path):
        raise CheckpointError(f'no checkpoint file at {path}; check the --load_model path')
    if not zipfile.is_zipfile(path):
        what = 'an empty file' if os.path.getsize(path) == 0 else 'not the zip archive torch.save writes'
        raise CheckpointError(f'{path} is not a readable torch checkpoint ({what}); it is corrupt or from '
                              'another tool: pick another checkpoint')
    import torch
    try:
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')  # torch warns about the pickle protocol of foreign files
            payload = torch.load(path, map_location=map_location, weights_only=True)
    except (OSError, MemoryError, torch.cuda.OutOfMemoryError):
        raise  # the disk or the memory, not the file: no reason to give up on this checkpoint
    except Exception as error:  # torch raises several types for damaged or foreign archives
        raise CheckpointError(f'{path} is not a readable torch checkpoint ({type(error).__name__}); it is '
                              'corrupt or holds more than tensors: pick another checkpoint') from None
    if not isinstance(payload, dict) or 'meta' not in payload or 'state' not in payload:
        raise CheckpointError(f'{path} was not written by this repo\'s save_model; pick a checkpoint it wrote')
    return payload


def check_checkpoint(path, args, backend):
    """Read `path` as a checkpoint of `backend` (without restoring it) and check that it fits the
    run, so a bad --load_model fails before the run writes anything."""
    meta = read_tf_meta(path) if backend == 'tf' else load_torch_payload(path)['meta']
    check_meta(meta, checkpoint_meta(args, backend), path)


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


# ---- run checkpoints: everything a killed run needs to continue (train.py --resume) ----------------
STATE_FILE = 'state.pkl'
BUFFER_FOLDER = 'buffer'
_RUN_CHECKPOINT = re.compile(r'^step(\d+)-update(\d+)$')
# Test hook: kill the process (SIGKILL) inside the N-th checkpoint write of this process, after the
# agent and the buffer are written and before the state file, so tests can kill a run mid-save.
KILL_IN_CHECKPOINT = 'RRD_TEST_KILL_IN_CHECKPOINT'


def capture_rngs(backend):
    """Python, numpy (global: exploration, buffer sampling) and torch (CPU, CUDA) RNG states, as
    plain Python/numpy objects. TF's graph-level random ops keep state inside the session that
    cannot be read back: a TF run resumes with those streams restarted from their seeds."""
    state = {'python': random.getstate(), 'numpy': np.random.get_state()}
    if backend == 'torch':
        import torch
        state['torch'] = torch.get_rng_state().numpy()
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            state['torch_cuda'] = [s.numpy() for s in torch.cuda.get_rng_state_all()]
    return state


def restore_rngs(state, backend):
    random.setstate(state['python'])
    np.random.set_state(state['numpy'])
    if backend == 'torch':
        import torch
        torch.set_rng_state(torch.from_numpy(state['torch']))
        if 'torch_cuda' in state and torch.cuda.is_available():
            torch.cuda.set_rng_state_all([torch.from_numpy(s) for s in state['torch_cuda']])


def agent_path(folder, backend):
    """Where a run checkpoint keeps the agent: a torch file, or a TF checkpoint directory."""
    return os.path.join(folder, 'agent.pt' if backend == 'torch' else 'agent')


def run_checkpoints(run_dir):
    """Complete run checkpoints in `run_dir`, oldest first (a checkpoint being written sits in a
    hidden temporary folder until it is complete)."""
    found = []
    for name in os.listdir(run_dir) if os.path.isdir(run_dir) else ():
        match = _RUN_CHECKPOINT.match(name)
        if match and os.path.isfile(os.path.join(run_dir, name, STATE_FILE)):
            found.append(((int(match[1]), int(match[2])), os.path.join(run_dir, name)))
    return [path for _, path in sorted(found)]


_writes = 0


def fsync_path(path):
    """fsync a file, or a folder (its entries: a rename) where the system can: Windows cannot open
    folders, and some network file systems refuse to sync them."""
    folder = os.path.isdir(path)
    if folder and os.name == 'nt':
        return
    try:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as error:
        if not (folder and error.errno in (errno.EINVAL, errno.EACCES, errno.EPERM)):
            raise


def sync_tree(folder):
    """fsync every file and folder under `folder`: a checkpoint is renamed into place only once
    all of it is on disk, so a power cut leaves it whole or absent."""
    for root, _, names in os.walk(folder):
        for name in names:
            fsync_path(os.path.join(root, name))
        fsync_path(root)


def save_run_checkpoint(run_dir, agent, state, buffer=None, keep=2):
    """Write `state` (picklable), the agent (`save_model`) and, when given, the replay buffer as
    `run_dir/step<env steps>-update<updates>/`, atomically (the folder appears complete or not at
    all, the state file written last); then delete all but the newest `keep` checkpoints."""
    global _writes
    _writes += 1
    path = os.path.join(run_dir, f'step{state["learner"]["env_steps"]}-update{state["learner"]["updates"]}')
    with atomic_write(path) as tmp:
        os.makedirs(tmp)
        agent.save_model(agent_path(tmp, agent.args.backend))
        state = dict(state, buffer=buffer.save(os.path.join(tmp, BUFFER_FOLDER)) if buffer is not None else None)
        if os.environ.get(KILL_IN_CHECKPOINT) == str(_writes):
            os.kill(os.getpid(), signal.SIGKILL)
        with open(os.path.join(tmp, STATE_FILE), 'wb') as file:
            pickle.dump(state, file, protocol=pickle.HIGHEST_PROTOCOL)
        sync_tree(tmp)
    fsync_path(run_dir)  # the rename itself
    for old in run_checkpoints(run_dir)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return path


def load_run_buffer(buffer, path, state):
    """Refill `buffer` from the run checkpoint at `path` (`state`: what its save returned)."""
    try:
        buffer.load(os.path.join(path, BUFFER_FOLDER), state)
    except (OSError, EOFError, KeyError, ValueError, zipfile.BadZipFile) as error:
        # numpy reads a damaged .npy/.npz as a pickle, which it refuses: say so, not "allow_pickle"
        reason = 'a damaged numpy file' if 'pickled' in str(error) else first_line(error)
        raise CheckpointError(f'{path}: its replay buffer is not readable ({reason})') from None


def load_run_state(path):
    """The state a run checkpoint holds (see `save_run_checkpoint`)."""
    try:
        with open(os.path.join(path, STATE_FILE), 'rb') as file:
            return pickle.load(file)
    except (OSError, MemoryError):
        raise  # the disk or the memory, not the file: no reason to give up on this checkpoint
    except Exception as error:  # damaged bytes make pickle raise almost any type
        raise CheckpointError(f'{path} is not a readable run checkpoint ({type(error).__name__})') from None
