"""Finding and reading the test-return logs of training runs, for tools/plot.py and tools/compare.py.

Each run is read as a `Run`: its evaluation steps (env steps), the mean test return at each, and
its metadata (`FIELDS`). Formats read:
  - this repo's npz `<logdir>/rews/<tag>/<run>/<env>.npz` (with an empty tag
    `<logdir>/rews/<run>/<env>.npz`), keys `info`, `steps`, `rewards`, `std`; the earlier layout
    `<logdir>/rews/<tag>/<env>.npz` with `steps`, `rewards` (and `std`);
  - this repo's CSV `<logdir>/csv/<run>.csv`, columns `Steps` and `charts/TestRewards` (written
    every cycle, so also usable for runs stopped before an epoch end);
  - the original TF1 release's npz, whose only key `info` holds (step, return) rows.
Metadata come from `<logdir>/models/<run>/config.json` (the run's flags) when it exists, else
from the run name `<tag>-<env>-<alg>[-<basis_alg>]-<backend>-seed<seed>[-<YYYYmmdd-HHMMSS>]`
(tools/sweep.py's names have no time), else
(earlier layout, original release) as well as the folder and file names allow; what cannot be
told is 'unknown' (None for the seed). Callers override fields with `overrides`.
"""
import csv
import glob
import json
import os
import re
import zipfile
from dataclasses import dataclass, field

import numpy as np

FIELDS = ('env', 'alg', 'backend', 'seed', 'tag', 'run')
CSV_STEPS, CSV_RETURNS = 'Steps', 'charts/TestRewards'
ORIGINAL = 'tf1-original'
UNKNOWN = 'unknown'
BASE_ALGS = ('rrd', 'ircr')
BASIS_ALGS = ('sac', 'td3', 'ddpg', 'dqn')
# Hold no test-return logs: checkpoints (may be npz), TensorBoard, text, sweep tables (CSV).
SKIPPED_FOLDERS = ('models', 'board', 'text', 'sweeps')

_RUN_NAME = re.compile(r'^(?P<head>.+?)(?:-(?P<backend>torch|tf))?-seed(?P<seed>\d+)'
                       r'(?:-(?P<time>\d{8}-\d{6})(?:-\d+)?)?$')
_ENV_ID = re.compile(r'(?:^|-)([A-Za-z][A-Za-z0-9_]*-v\d+)(?=-|$)')
_SEED = re.compile(r'(?:seed[-_=\s]?|(?:^|[-_\s])s)(\d+)(?=$|[-_\s.])')


@dataclass
class Run:
    steps: np.ndarray               # float64 [N], increasing env steps
    returns: np.ndarray             # float64 [N], mean test return at each step
    meta: dict = field(default_factory=dict)
    path: str = ''

    def __getitem__(self, key):
        return self.meta.get(key)


# ---- run names and metadata ----------------------------------------------------------------------
def parse_run_name(name, env=None):
    """Metadata of a run name `<tag>-<env>-<alg>[-<basis_alg>]-<backend>-seed<seed>[-<time>]`, or
    None if `name` is not one. `env` (known from the npz file name) disambiguates tags and env
    ids that contain '-'."""
    match = _RUN_NAME.match(name)
    if not match:
        return None
    head = match['head']
    if env and (head.startswith(env + '-') or f'-{env}-' in head):
        cut = head.rfind(f'-{env}-')
        tag, algs = (head[:cut], head[cut + len(env) + 2:]) if cut >= 0 else ('', head[len(env) + 1:])
    else:
        found = list(_ENV_ID.finditer(head))
        if not found:
            return None
        env = found[-1][1]
        tag, algs = head[:found[-1].start()], head[found[-1].end() + 1:]
    backend = match['backend'] or guess_from_names([tag]).get('backend', UNKNOWN)  # older names: no backend part
    return {'env': env, 'alg': algs or UNKNOWN, 'backend': backend,
            'seed': int(match['seed']), 'tag': tag, 'run': name}


def guess_from_names(names):
    """Best-effort alg / backend / seed from free-form folder names (earlier layout, original
    release): tokens split at '-', '_' and spaces, e.g. 'rrd-sac-torch-s3' or 'RRD Hopper-v2 seed2'."""
    meta = {}
    for name in names:
        tokens = re.split(r'[-_\s]+', name.lower())
        base = next((token for token in tokens if token in BASE_ALGS), None)
        basis = next((token for token in tokens if token in BASIS_ALGS), None)
        if (base or basis) and 'alg' not in meta:
            meta['alg'] = '-'.join(part for part in (base, basis) if part)
        backend = 'torch' if {'torch', 'pytorch'} & set(tokens) else 'tf' if 'tf' in tokens else None
        if backend and 'backend' not in meta:
            meta['backend'] = backend
        seed = _SEED.search(name.lower())
        if seed and 'seed' not in meta:
            meta['seed'] = int(seed[1])
    return meta


def alg_label(alg, basis_alg=None):
    """'rrd-sac' for RRD/IRCR over a basis algorithm, else the algorithm alone."""
    return f'{alg}-{basis_alg}' if basis_alg and basis_alg != alg else alg


def config_meta(logdir, run):
    """Metadata from `<logdir>/models/<run>/config.json` (the run's flags), or None."""
    path = os.path.join(logdir, 'models', run, 'config.json')
    if not os.path.isfile(path):
        return None
    with open(path) as file:
        config = json.load(file)
    backend = config.get('backend')
    if backend is None and config.get('use_pytorch') is not None:
        backend = 'torch' if config['use_pytorch'] else 'tf'
    return {'env': config.get('env'), 'alg': alg_label(config.get('alg'), config.get('basis_alg')),
            'backend': backend or UNKNOWN, 'seed': config.get('seed'), 'tag': config.get('tag', ''),
            'run': run}


def _below(path, folder):
    """(logdir, [names between `folder` and the file]) for the nearest ancestor named `folder`."""
    parts = os.path.abspath(path).split(os.sep)
    if folder not in parts[:-1]:
        return None, []
    index = len(parts) - 2 - parts[:-1][::-1].index(folder)
    return os.sep.join(parts[:index]) or os.sep, parts[index + 1:-1]


def _metadata(path, original, env):
    """Metadata of the log at `path` (see the module docstring for the order of sources)."""
    if path.endswith('.csv'):
        logdir, _ = _below(path, 'csv')
        run = os.path.basename(path)[:-4]
        meta = (logdir and config_meta(logdir, run)) or parse_run_name(run) or {'run': run, 'tag': run}
        return meta
    logdir, names = _below(path, 'rews')
    if not original and logdir is not None and names:
        run = names[-1]
        config = config_meta(logdir, run)
        meta = config or parse_run_name(run, env)
        if meta:
            meta['env'] = meta.get('env') or env
            if not config and len(names) > 1:  # a run name spells its tag file-name safe ('RRD_Ant-v2')
                meta['tag'] = '/'.join(names[:-1])
            return meta
        if len(names) > 1 or os.path.isfile(os.path.join(logdir, 'csv', f'{run}.csv')):
            # rews/<tag>/<run>/, or rews/<run>/ beside the run's CSV (not the earlier rews/<tag>/):
            # the run's own name, as its CSV has, so that the two are found to be one run
            return guess_from_names([run]) | {'env': env, 'tag': '/'.join(names[:-1]), 'run': run}
    folders = names or [os.path.basename(os.path.dirname(os.path.abspath(path)))]
    meta = guess_from_names(folders[::-1])
    meta.update(env=env, tag=folders[0] if names else folders[-1], run='/'.join([*folders[-1:], env]))
    if original:
        meta['backend'] = ORIGINAL
    return meta


# ---- reading one run -----------------------------------------------------------------------------
def _read_npz(path):
    """(steps, returns, is the original release's format)."""
    try:
        data = np.load(path)
        if not isinstance(data, np.lib.npyio.NpzFile):
            raise ValueError('a single array, not an archive')
        with data:
            keys = set(data.files)
            arrays = {key: data[key] for key in keys & {'steps', 'rewards', 'info'}}
    except (OSError, EOFError, ValueError, zipfile.BadZipFile) as error:  # truncated, not npz, pickled
        # numpy reads anything that is neither npz nor npy as a pickle, which it refuses to load
        reason = 'not an npz archive' if 'pickled' in str(error) else str(error).splitlines()[0][:80]
        raise ValueError(f'{path} is not a readable .npz log ({reason})') from None
    if {'steps', 'rewards'} <= keys:
        return arrays['steps'], arrays['rewards'], False
    if keys == {'info'}:
        info = np.asarray(arrays['info'], np.float64)
        if info.ndim != 2 or info.shape[1] < 2:
            raise ValueError(f'{path}: key info has shape {info.shape}, expected (step, return) rows')
        return info[:, 0], info[:, 1], True
    raise ValueError(f'{path} is no test-return log: keys {sorted(keys)}, expected steps/rewards '
                     f'or the original release\'s info')


def _read_csv(path):
    with open(path, newline='') as file:
        rows = [row for row in csv.DictReader(file) if row.get(CSV_STEPS) and row.get(CSV_RETURNS)]
    if not rows:
        raise ValueError(f'{path} has no rows with both {CSV_STEPS!r} and {CSV_RETURNS!r}')
    try:
        return [float(row[CSV_STEPS]) for row in rows], [float(row[CSV_RETURNS]) for row in rows]
    except ValueError as error:
        raise ValueError(f'{path}: {error}') from None


def read_run(path, overrides=None):
    """One run from an npz or CSV log; metadata fields in `overrides` replace those found."""
    if path.endswith('.npz'):
        steps, returns, original = _read_npz(path)
    elif path.endswith('.csv'):
        (steps, returns), original = _read_csv(path), False
    else:
        raise ValueError(f'{path}: expected a .npz or .csv log')
    steps, returns = np.asarray(steps, np.float64), np.asarray(returns, np.float64)
    if steps.shape != returns.shape or steps.ndim != 1 or steps.size == 0:
        raise ValueError(f'{path}: steps {steps.shape} and returns {returns.shape} do not form a curve')
    order = np.argsort(steps, kind='stable')
    env = os.path.basename(path)[:-4] if path.endswith('.npz') else None
    meta = dict.fromkeys(FIELDS, UNKNOWN) | {'seed': None, 'tag': ''}
    meta.update({key: value for key, value in _metadata(path, original, env).items() if value is not None})
    meta.update(overrides or {})
    return Run(steps[order], returns[order], meta, path)


# ---- finding runs --------------------------------------------------------------------------------
def _logs_in(folder):
    """npz and CSV logs below `folder`, skipping the folders that hold no test returns."""
    found = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if d not in SKIPPED_FOLDERS)
        found += [os.path.join(root, name) for name in sorted(files) if name.endswith(('.npz', '.csv'))]
    return found


def find_runs(patterns, overrides=None, note=print, per_pattern=None):
    """Runs named by files, folders (searched recursively) or glob patterns, in order.

    A pattern that matches nothing, or a named file that is no log, is an error. Files found
    inside a folder that are no log are skipped with a note. A run found more than once (as npz
    and CSV in a whole logdir, or named by several patterns) is read once, from the log with more
    evaluations. `per_pattern`: fields set on the runs of each pattern (e.g. a label); a run
    named by several patterns gets the first's."""
    found = []  # (pattern index, run)
    for index, pattern in enumerate(patterns):
        path = os.path.expanduser(pattern)  # a path that exists is no pattern: tags may hold '[' or '*'
        matches = [path] if os.path.exists(path) else sorted(glob.glob(path, recursive=True))
        if not matches:
            raise ValueError(f'no log matches {pattern!r}')
        for match in matches:
            if os.path.isdir(match):
                for path in _logs_in(match):
                    try:
                        found.append((index, read_run(path, overrides)))
                    except (ValueError, OSError, KeyError) as error:
                        note(f'note: skipped {path}: {error}')
            else:
                found.append((index, read_run(match, overrides)))
    if not found:
        raise ValueError(f'no run logs found in {" ".join(patterns)}')
    unique, doubles = {}, 0  # the same file named by several patterns: read once
    for index, run in found:
        path = os.path.realpath(run.path)
        doubles += path in unique
        unique.setdefault(path, [index, run])
    logs = list(unique.values())  # [first pattern index, run]
    npz_logs = {}  # (logdir, run name) -> its npz logs, one per env
    for entry in logs:
        if entry[1].path.endswith('.npz'):
            npz_logs.setdefault((_logdir_of(entry[1].path), entry[1]['run']), []).append(entry)
    kept = []
    for entry in logs:
        index, run = entry
        if run.path.endswith('.csv'):  # the run's CSV beside its npz (a whole logdir): one run
            twins = [twin for twin in npz_logs.get((_logdir_of(run.path), run['run']), ())
                     if run['env'] in (UNKNOWN, None, twin[1]['env'])]
            if twins:
                doubles += 1
                twins[0][:] = [min(twins[0][0], index), _one_run(twins[0][1], run)]
                continue
        kept.append(entry)
    if doubles:
        note(f'note: {doubles} run(s) found more than once (as npz and CSV, or by several patterns): '
             f'read each once, from its longer log')
    for index, run in kept:
        run.meta.update(per_pattern[index] if per_pattern else {})  # the first pattern's, whichever log won
    return [run for _, run in kept]


def _one_run(npz, csv):
    """One run from its npz and CSV logs: the longer log's curve, each one's metadata where the
    other cannot tell (a CSV of a run named freely: its env), the tag as its npz folder spells it
    (a run name spells it file-name safe)."""
    longer, other = (csv, npz) if csv.steps.size > npz.steps.size else (npz, csv)
    longer.meta.update({name: value for name, value in other.meta.items() if longer[name] in (UNKNOWN, None)})
    longer.meta['tag'] = npz['tag']
    return longer


def _logdir_of(path):
    for folder in ('rews', 'csv'):
        logdir, _ = _below(path, folder)
        if logdir is not None:
            return logdir
    return os.path.dirname(os.path.abspath(path))

