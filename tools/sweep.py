"""Experiment sweeps on Ray: envs x algorithms x backends x seeds, one machine or a cluster.

    python tools/sweep.py run --name paper --envs Hopper-v2 Walker2d-v2 --algs rrd rrd-l ircr \\
        --backends torch --seeds 0-9 -- --epochs=10
    python tools/sweep.py run --grid tools/sweeps/mujoco-paper.yaml      # the paper's main grid
    python tools/sweep.py summary --name paper                           # table (+ plots) from the logs

Every cell of the grid is one ordinary `python train.py` process with the deterministic run name
`<sweep>-<env>-<variant>-<backend>-seed<seed>` (`--run_name`), `--tag <sweep>` and the sweep's
`--logdir`, so its outputs are exactly a single run's files. A variant is an algorithm with an
optional basis algorithm (`sac`, `rrd`, `rrd-sac`, `ircr-td3`), the paper's RRD-L(RD) `rrd-l`
(`--alg=rrd --rrd_bias_correction=True`, also `rrd-l-td3`, ...), or a name defined in the grid
file's `variants:` (name -> train.py flags). Flags after `--` go to every cell.

Re-running a sweep is safe: cells whose `models/<run>/status.json` says finished (or diverged:
it would diverge again) are skipped; as each of the others gets its turn, a cell whose run is live
in another process (its `models/<run>/.lock` held) is reported as running elsewhere and left
alone, one that train.py created (`models/<run>/config.json`) continues with
`train.py --resume <run>` and its saved flags, and the rest start. A failed cell is reported with
its console log, `<logdir>/sweeps/<sweep>/<run>.out`, and the others go on. One process drives a
sweep at a time (it holds `<logdir>/sweeps/<sweep>/.lock`); a second is refused.
Ctrl-C (or SIGTERM) sends SIGINT to the running cells, which checkpoint and exit; the same
command then continues. If the sweep itself is killed, its Ray workers die and each cell's
train.py gets SIGTERM (it checkpoints too).

Ray (`pip install -r requirements-extra.txt`) schedules the cells. By default it is a local
instance with `--num_cpus` (all cores) CPUs, one cell per `--threads` cores (default 1; each
cell's BLAS/torch/TF threads are set to match); `--address HOST:PORT` (or `auto`) joins an
existing cluster instead (with Ray's token authentication on, export RAY_AUTH_MODE=token).
Each cell reserves `--threads` CPUs, `--gpus_per_run` GPUs (fractions share a GPU; with 0 the
cells see no GPU) and `memory=` its replay buffer's own size plus one update's batch and a fixed
per-process overhead, so Ray never packs more runs on a node than fit. The driver sizes each
distinct buffer by building it with the cell's flags (numpy reserves the arrays without touching
them, so this costs nothing); the buffer's own check then wants that much memory available on
the driver, so start a sweep on a node that could run one of its cells.

Cluster: every node runs the cells with the driver's Python (the same interpreter path and
packages) from the same repository path, writing to `--logdir` directly; so on more than one node
the repository and the logdir must be on a shared filesystem (NFS, ...) mounted at the same path
everywhere. A cell that lands on a node which cannot see them fails with one line saying so.
Ray's own files go to its temp folder (/tmp/ray), never into the working directory; its console
messages are kept off the sweep's console.

The sweep's folder `<logdir>/sweeps/<sweep>/` holds `sweep.json` (each cell's train.py flags),
`events.jsonl` (one line per ended process: exit code, status, wall seconds, node), the cells'
console logs, and `summary.md` / `summary.csv` (per cell: status, env steps, final and best test
return from its CSV, wall time summed over the processes this tool saw end) plus tools/plot.py's
learning curves by variant and backend and, given `--norm`/`--reference`, its aggregate statistics.
"""
import argparse
import contextlib
import csv
import glob
import io
import json
import math
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

from arguments import ALGS, BASIS_ALGS, ArgumentParser, get_args  # noqa: E402
from utils.os_utils import RunLocked, format_seconds, hold_run, run_holder, write_atomic  # noqa: E402

TRAIN = os.path.join(REPO, 'train.py')
INSTALL_HINT = 'pip install -r requirements-extra.txt'
NAME = re.compile(r'^[A-Za-z0-9._+=-]+$')
BACKENDS = {'torch': '--use_pytorch=True', 'tf': '--use_pytorch=False'}
# Named variants beyond `<alg>[-<basis_alg>]`; each also takes a basis suffix (`rrd-l-td3`).
VARIANTS = {'rrd-l': ('--alg=rrd', '--rrd_bias_correction=True')}  # the paper's RRD-L(RD)
# Flags the sweep sets itself (the grid's axes and each cell's identity).
OWN_FLAGS = ('env', 'alg', 'basis_alg', 'use_pytorch', 'seed', 'tag', 'logdir', 'run_name',
             'resume', 'threads')
# Peak RSS of a small run is ~0.35 GB (torch) and ~0.85 GB (TF) beyond its data (replay
# buffer, batches); the rest is headroom for larger networks and checkpoint writes.
PROCESS_OVERHEAD = {'torch': 1 << 30, 'tf': 3 << 29}
TERMINAL = ('finished', 'diverged')  # a re-run skips these
EXIT_STATUS = {0: 'finished', 2: 'failed', 3: 'diverged', 130: 'interrupted', 143: 'interrupted'}
STOP_GRACE = 600  # seconds the stopping cells get to write their checkpoint


class SweepError(Exception):
    """A misuse of the sweep tool: one line naming the problem and the fix."""


# ---- the grid ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Cell:
    run: str          # the run name (--run_name)
    env: str
    variant: str
    backend: str
    seed: int
    argv: tuple       # train.py flags of a fresh start, without --run_name / --threads


def variant_flags(variant, custom=None):
    """train.py flags of an algorithm variant: a grid-file variant, `rrd-l[-<basis>]`, or
    `<alg>[-<basis>]`."""
    if custom and variant in custom:
        value = custom[variant]
        return tuple(shlex.split(value) if isinstance(value, str) else map(str, value))
    bases = {**{alg: (f'--alg={alg}',) for alg in ALGS}, **VARIANTS}
    for base in sorted(bases, key=len, reverse=True):
        basis = variant[len(base) + 1:] if variant.startswith(base + '-') else None
        if variant == base:
            return bases[base]
        alg = bases[base][0].split('=')[1]
        if basis in BASIS_ALGS and alg in ('rrd', 'ircr'):
            return bases[base] + (f'--basis_alg={basis}',)
    known = ', '.join([*ALGS, *VARIANTS, *(custom or ())])
    raise SweepError(f'unknown algorithm variant {variant!r}: use one of {known}, optionally with '
                     f'a basis algorithm for rrd/ircr (e.g. rrd-sac, rrd-l-td3), or define it '
                     f'under variants: in a grid file')


def parse_seeds(values):
    """Seeds from ints and inclusive ranges: ['0-4', '10'] -> [0, 1, 2, 3, 4, 10]."""
    seeds = []
    for value in values:
        match = re.fullmatch(r'(\d+)(?:-(\d+))?', str(value).strip())
        if not match or (match[2] and int(match[2]) < int(match[1])):
            raise SweepError(f'bad seed {value!r}: give integers or ranges like 0-9')
        seeds += range(int(match[1]), int(match[2] or match[1]) + 1)
    return list(dict.fromkeys(seeds))


def check_name(name, what):
    if not name or not NAME.match(name) or name in ('.', '..'):
        raise SweepError(f'{what} {name!r} is not a plain name: use letters, digits and ._+=- only')
    return name


def check_overrides(overrides, variant=None):
    """Overrides may not set the flags that the grid or the sweep decides for every cell; a grid
    variant sets the algorithm (--alg, --basis_alg) and nothing else of those."""
    for flag in overrides:
        name = flag.split('=')[0].lstrip('-') if flag.startswith('--') else None
        if variant is not None and name in OWN_FLAGS and name not in ('alg', 'basis_alg'):
            raise SweepError(f'variant {variant!r} sets train.py flag --{name}, which the sweep sets for '
                             f'every cell (the run name says which); give it as a sweep option '
                             f'(--envs/--backends/--seeds/--logdir/--threads)')
        if variant is None and name in OWN_FLAGS:
            raise SweepError(f'train.py flag --{name} is set by the sweep for every cell; give it '
                             f'as a sweep option (--envs/--algs/--backends/--seeds/--logdir/'
                             f'--threads) or in a grid variant')


def expand(name, envs, algs, backends, seeds, overrides=(), logdir='log', variants=None):
    """The grid's cells in a fixed order (env, variant, backend, seed)."""
    check_name(name, 'sweep name')
    check_overrides(overrides)
    # one cell per run name: a repeated value would run it twice at once, into the same files
    envs, algs, backends = (list(dict.fromkeys(values)) for values in (envs, algs, backends))
    for what, values in (('envs', envs), ('algs', algs), ('backends', backends), ('seeds', seeds)):
        if not values:
            raise SweepError(f'the grid has no {what}: give --{what} or {what}: in the grid file')
    for backend in backends:
        if backend not in BACKENDS:
            raise SweepError(f'unknown backend {backend!r}: use torch and/or tf')
    cells = []
    for env in envs:
        check_name(env, 'env id')
        for variant in algs:
            flags = variant_flags(check_name(variant, 'algorithm variant'), variants)
            check_overrides(flags, variant)
            for backend in backends:
                for seed in seeds:
                    run = f'{name}-{env}-{variant}-{backend}-seed{seed}'
                    argv = (f'--env={env}', *flags, BACKENDS[backend], f'--seed={seed}',
                            f'--tag={name}', f'--logdir={logdir}', *overrides)
                    cells.append(Cell(run, env, variant, backend, seed, argv))
    return cells


def load_grid_file(path):
    """A grid file (YAML, or JSON which YAML reads too): name, envs, algs, backends, seeds,
    overrides, variants, logdir."""
    try:
        with open(path) as file:
            text = file.read()
    except OSError as error:
        raise SweepError(f'cannot read grid file {path}: {error.strerror}') from None
    try:
        if path.endswith('.json'):
            grid = json.loads(text)
        else:
            import yaml
            grid = yaml.safe_load(text)
    except ImportError:
        raise SweepError(f'YAML grid files need PyYAML ({INSTALL_HINT}), or write {path} as JSON') from None
    except Exception as error:
        raise SweepError(f'grid file {path} does not parse: {str(error).splitlines()[0]}') from None
    keys = ('name', 'envs', 'algs', 'backends', 'seeds', 'overrides', 'variants', 'logdir')
    if not isinstance(grid, dict) or set(grid) - set(keys):
        extra = sorted(set(grid) - set(keys)) if isinstance(grid, dict) else 'not a mapping'
        raise SweepError(f'grid file {path}: unexpected {extra}; allowed keys: {", ".join(keys)}')
    grid = {key: value for key, value in grid.items() if value is not None}  # `envs:` left empty

    def as_text(value, key, expected='a string'):
        """YAML reads `name: 2024` or `[--epochs, 10]` as numbers: they mean text."""
        if isinstance(value, str) or isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        raise SweepError(f'grid file {path}: {key} must be {expected}, not {value!r}')

    def texts(value, key, flags=False):
        """A list of strings from a list or one value (`seeds: 0-9`, `envs: Hopper-v2`); train.py
        flags may be one string, split as a shell would."""
        if flags and isinstance(value, str):
            return shlex.split(value)
        if not isinstance(value, list) and flags:
            raise SweepError(f'grid file {path}: {key} must be train.py flags (a string or a list '
                             f'of strings), not {value!r}')
        return [as_text(item, key, 'a string or a list of strings')
                for item in (value if isinstance(value, list) else [value])]
    for key in ('name', 'logdir'):
        if key in grid:
            grid[key] = as_text(grid[key], key)
    for key in ('envs', 'algs', 'backends', 'seeds', 'overrides'):
        if key in grid:
            grid[key] = texts(grid[key], key, flags=key == 'overrides')
    variants = grid.get('variants', {})
    if not isinstance(variants, dict):
        raise SweepError(f'grid file {path}: variants must map names to train.py flags '
                         f'(e.g. k8: --alg=rrd --rrd_sample_size=8), not {variants!r}')
    grid['variants'] = {as_text(name, 'a variant name'): texts(flags, f'variants: {name}', flags=True)
                        for name, flags in variants.items()}
    return grid


def flag_changes(before, after):
    """The flags whose values differ between two train.py argument lists, none when they mean the
    same run (order and spelling, such as `--epochs 1` for `--epochs=1`, do not matter)."""
    if before == after:
        return []
    try:
        with contextlib.redirect_stderr(io.StringIO()):
            old, new = vars(get_args(before)), vars(get_args(after))
    except SystemExit:  # no longer the flags of one run: compare them as written
        return [' '.join(sorted(set(before) ^ set(after)))]
    return [f'--{key} {old.get(key)!r} -> {new.get(key)!r}' for key in sorted(old.keys() | new.keys())
            if old.get(key) != new.get(key)]


# ---- the sweep folder ----------------------------------------------------------------------------
class Sweep:
    """The files of one sweep under `<logdir>/sweeps/<name>/`."""

    def __init__(self, logdir, name):
        self.logdir, self.name = os.path.abspath(logdir), name
        self.folder = os.path.join(self.logdir, 'sweeps', name)

    def out_path(self, run):
        return os.path.join(self.folder, f'{run}.out')

    def run_dir(self, run):
        return os.path.join(self.logdir, 'models', run)

    def status(self, run):
        """The run's status.json as a dict, or None before train.py wrote one."""
        try:
            with open(os.path.join(self.run_dir(run), 'status.json')) as file:
                return json.load(file)
        except (OSError, ValueError):
            return None

    @contextlib.contextmanager
    def driven(self):
        """Hold the sweep's lock while this process drives it: a second driver would launch the
        cells this one runs. The OS releases it however the process ends."""
        with contextlib.ExitStack() as held:
            try:
                held.enter_context(hold_run(self.folder))
            except RunLocked as error:
                raise SweepError(f'sweep {self.name} is already running in another process'
                                 f'{f" (pid {error.pid})" if error.pid else ""}; let it finish, or stop it '
                                 f'(Ctrl-C) before running it again') from None
            yield

    def cells(self):
        """run -> {env, variant, backend, seed, argv} of every cell this sweep ever had."""
        try:
            with open(os.path.join(self.folder, 'sweep.json')) as file:
                return json.load(file)['cells']
        except FileNotFoundError:
            return {}

    def merge_cells(self, cells):
        """sweep.json's cells with `cells` added; a run name already there with other flags is
        an error (its outputs were trained with those)."""
        known = self.cells()
        for cell in cells:
            changed = flag_changes(known.get(cell.run, {}).get('argv', list(cell.argv)), list(cell.argv))
            if changed:
                raise SweepError(f'cell {cell.run} already ran with other flags ({"; ".join(changed)}); keep '
                                 f'the flags or use a new --name')
            known[cell.run] = {'env': cell.env, 'variant': cell.variant, 'backend': cell.backend,
                               'seed': cell.seed, 'argv': list(cell.argv)}
        return known

    def write_cells(self, known):
        os.makedirs(self.folder, exist_ok=True)
        write_atomic(os.path.join(self.folder, 'sweep.json'), lambda file: json.dump(
            {'name': self.name, 'logdir': self.logdir, 'cells': known}, file, indent=1))

    def record_event(self, **event):
        with open(os.path.join(self.folder, 'events.jsonl'), 'a') as file:
            file.write(json.dumps(event) + '\n')

    def events(self):
        try:
            with open(os.path.join(self.folder, 'events.jsonl')) as file:
                return [json.loads(line) for line in file if line.strip()]
        except FileNotFoundError:
            return []


def failure_line(path, offset=0):
    """The one-line error of a failed cell from its console log, in what was written after
    `offset` (where its process started: the log holds every earlier process of the cell): the
    last `error:` line (train.py's own; another live process may append to the same log), else
    the last line."""
    try:
        with open(path, 'rb') as file:
            file.seek(max(offset, file.seek(0, os.SEEK_END) - (1 << 16)))
            lines = [line.strip() for line in file.read().decode(errors='replace').splitlines() if line.strip()]
    except OSError:
        return ''
    errors = [line for line in lines if line.startswith('error:')]
    return (errors or lines or [''])[-1]


# ---- what each cell needs ------------------------------------------------------------------------
@contextlib.contextmanager
def quiet():
    """Silence file descriptors 1 and 2 (env builders print banners from C++, e.g. ALE's)."""
    sys.stdout.flush(), sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(os.devnull, 'w') as null:
        os.dup2(null.fileno(), 1), os.dup2(null.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved[0], 1), os.dup2(saved[1], 2)
            os.close(saved[0]), os.close(saved[1])


def parse_cell(cell):
    """The cell's parsed train.py flags, or the one-line error train.py would print."""
    messages = io.StringIO()
    try:
        with contextlib.redirect_stderr(messages), contextlib.redirect_stdout(messages):
            return get_args(list(cell.argv)), None
    except SystemExit:
        lines = [line for line in messages.getvalue().splitlines() if line.strip()]
        last = lines[-1] if lines else 'error: train.py rejected the flags'
        return None, re.sub(r'^\S+: (?=error:)', '', last)  # argparse's program-name prefix


def run_bytes(args):
    """Memory of a run's data: its replay buffer, by the buffer's own size (built with the cell's
    env dims and its `nbytes` read; numpy only reserves the arrays, so this costs no memory), and
    one update's batch (train.py's own estimate). A buffer larger than this machine's available
    memory raises the buffer's own MemoryError."""
    from algorithm.replay_buffer import create_buffer
    from arguments import update_nbytes
    from envs import make_env
    from train import describe_env
    with quiet():
        env = make_env(args)
    describe_env(args, env)
    return create_buffer(args).nbytes + update_nbytes(args)


class Plan:
    """Per cell: train.py's error for its flags, or the memory to reserve and its env steps."""

    def __init__(self, cells):
        self.errors, self.memory, self.total_steps = {}, {}, {}
        sizes = {}
        for cell in cells:
            args, error = parse_cell(cell)
            if error:
                self.errors[cell.run] = error
                continue
            key = tuple(flag for flag in cell.argv if not flag.startswith(('--seed=', '--use_pytorch=')))
            if key not in sizes:
                try:
                    sizes[key] = run_bytes(args)
                except MemoryError as error:
                    raise SweepError(f'cell {cell.run}: {error}') from None
                except (ValueError, ImportError) as error:  # its env cannot be built here
                    sizes[key] = f'error: {error}'
            if isinstance(sizes[key], str):
                self.errors[cell.run] = sizes[key]
                continue
            self.memory[cell.run] = sizes[key] + PROCESS_OVERHEAD[cell.backend]
            self.total_steps[cell.run] = args.epochs * args.cycles * args.iterations * args.timesteps


# ---- running cells on Ray ------------------------------------------------------------------------
def _prepare_child():
    """In the training child, before exec: the ordinary signal handling that Ray's worker
    changed (it blocks and ignores signals, which a child inherits), and SIGTERM (checkpoint and
    exit) when the worker running it dies, so a killed sweep leaves no orphan runs behind."""
    import ctypes
    signal.pthread_sigmask(signal.SIG_SETMASK, [])
    for stop in (signal.SIGINT, signal.SIGTERM):
        signal.signal(stop, signal.SIG_DFL)
    ctypes.CDLL('libc.so.6', use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class CellProcess:
    """A Ray actor that runs one cell's train.py and forwards a stop request as SIGINT.

    The child gets its own session, so a Ctrl-C in the sweep's terminal reaches it only through
    `interrupt`, once, and it checkpoints instead of dying mid-write."""

    def __init__(self):
        self.proc, self.stopped, self.lock = None, False, threading.Lock()

    def run(self, fresh, resume, run_dir, env, out_path):
        """Run the cell: `resume` if train.py created its run (its config.json), else `fresh`,
        decided as the process starts (the run may have started since the cell was queued); not
        at all while another process runs it (its pid is returned as `holder`). `offset`: where
        this process's output starts in the console log."""
        node = socket.gethostname()
        result = {'rc': None, 'seconds': 0.0, 'node': node, 'error': None, 'holder': None, 'offset': 0}
        if not os.path.isdir(os.path.dirname(out_path)) or not os.path.isfile(fresh[1]):
            return result | {'error': f'node {node} does not see the sweep folder {os.path.dirname(out_path)} '
                                      f'or {fresh[1]}: on a multi-node cluster put the repository and '
                                      f'--logdir on a filesystem shared by all nodes'}
        if REPO not in sys.path:  # a Ray worker's path has the driver's script folder, not the repository
            sys.path.insert(0, REPO)
        from utils.os_utils import RUN_BUSY_EXIT, run_holder  # after the check: a node without the repository gets its line
        start = time.time()
        with self.lock:
            if self.stopped:
                return result
            result['holder'] = run_holder(run_dir)
            if result['holder'] is not None:
                return result
            cmd = resume if os.path.isfile(os.path.join(run_dir, 'config.json')) else fresh
            with open(out_path, 'a') as out:
                out.write(f'# sweep: {time.strftime("%Y-%m-%d %H:%M:%S")} on {node}: {shlex.join(cmd)}\n')
                out.flush()
                result['offset'] = out.tell()
                self.proc = subprocess.Popen(cmd, cwd=REPO, env={**os.environ, **env}, stdout=out,
                                             stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                             start_new_session=True, preexec_fn=_prepare_child)
        rc = self.proc.wait()
        if rc == RUN_BUSY_EXIT:  # another process took the run between the probe and this start
            return result | {'holder': run_holder(run_dir) or ''}
        return result | {'rc': rc, 'seconds': time.time() - start}

    def interrupt(self):
        with self.lock:
            self.stopped = True
            if self.proc is not None and self.proc.poll() is None:
                self.proc.send_signal(signal.SIGINT)


def import_ray():
    try:
        import ray
    except ImportError:
        raise SweepError(f'the sweep tool needs Ray: {INSTALL_HINT}') from None
    return ray


def check_reachable(address):
    """A host:port that does not answer fails here in seconds; Ray would retry for minutes."""
    host, _, port = address.rpartition(':')
    if '://' in address or not port.isdigit():
        return  # 'auto', or a ray:// client address: Ray itself fails fast on those
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except OSError as error:
        raise SweepError(f'no Ray cluster answers at {address} ({error.strerror or error}); '
                         f'check the head node address (`ray status` on the head)') from None


def stop_on_signals():
    """SIGINT and SIGTERM raise KeyboardInterrupt in the driver: the cells are stopped with their
    checkpoints and the sweep says how to continue. Also when started with SIGINT ignored (&)."""
    for stop in (signal.SIGINT, signal.SIGTERM):
        signal.signal(stop, signal.default_int_handler)


def start_ray(opts):
    ray = import_ray()
    import logging
    common = dict(log_to_driver=False, logging_level=logging.WARNING, configure_logging=True)
    if opts.address:
        check_reachable(opts.address)
        try:
            ray.init(address=opts.address, **common)
        except (ConnectionError, RuntimeError, ValueError) as error:
            raise SweepError(f'cannot connect to the Ray cluster at {opts.address}: '
                             f'{str(error).splitlines()[0]}; check the address (`ray status`), and '
                             f'for a cluster with token authentication set RAY_AUTH_MODE=token') from None
    else:
        # A fresh local instance turns Ray's token authentication on and says so; that note
        # is not the sweep's business.
        logging.getLogger('ray._private.authentication').setLevel(logging.ERROR)
        # Ray SIGKILLs a dying worker's children; a cell's train.py should rather get its
        # SIGTERM (see _prepare_child) and checkpoint.
        ray.init(num_cpus=opts.num_cpus or os.cpu_count(), include_dashboard=False,
                 object_store_memory=80 << 20,  # the cells pass nothing through it
                 _system_config={'kill_child_processes_on_worker_exit': False}, **common)
    stop_on_signals()  # ray.init installs a SIGTERM handler of its own, which ends the driver at once
    return ray


def cell_env(opts):
    """Environment of a cell's process: its threads, and no GPU unless it reserved one."""
    threads = str(opts.threads)
    env = {name: threads for name in ('OMP_NUM_THREADS', 'MKL_NUM_THREADS', 'OPENBLAS_NUM_THREADS',
                                      'TF_NUM_INTRAOP_THREADS', 'TF_NUM_INTEROP_THREADS')}
    if not opts.gpus_per_run:
        env['CUDA_VISIBLE_DEVICES'] = ''
    return env


def command(cell, logdir, threads, resume):
    base = [sys.executable, TRAIN]
    if resume:  # the run keeps its saved flags (its --threads included)
        return base + [f'--resume={cell.run}', f'--logdir={logdir}']
    return base + list(cell.argv) + [f'--run_name={cell.run}', f'--threads={threads}']


def check_fits(ray, plan, runs, opts):
    """Cells no node can hold would wait forever: name the first and the fix."""
    nodes = [node['Resources'] for node in ray.nodes() if node.get('Alive')]
    for run in runs:
        need = {'CPU': opts.threads, 'memory': plan.memory[run], 'GPU': opts.gpus_per_run}
        if not any(all(node.get(key, 0) >= value for key, value in need.items() if value)
                   for node in nodes):
            largest = {key: max(node.get(key, 0) for node in nodes) for key in need}
            short = [key for key, value in need.items() if value and largest[key] < value] or list(need)
            fixes = {'CPU': '--threads (or more --num_cpus)', 'memory': '--buffer_size', 'GPU': '--gpus_per_run'}
            have = {'CPU': f'{largest["CPU"]:g} CPU', 'memory': f'{largest["memory"] / 2**30:.1f} GiB of memory',
                    'GPU': f'{largest["GPU"]:g} GPU'}
            gpus = f', {opts.gpus_per_run:g} GPU' if opts.gpus_per_run else ''
            raise SweepError(f'cell {run} needs {opts.threads} CPU{gpus} and '
                             f'{plan.memory[run] / 2**30:.1f} GiB of memory (replay buffer + process), but no '
                             f'Ray node has that (the largest: {", ".join(have[key] for key in short)}); '
                             f'lower {" or ".join(fixes[key] for key in short)}')
    if not opts.gpus_per_run and any(node.get('GPU') for node in nodes):
        print('note: the cluster has GPUs but cells run on CPU; give --gpus_per_run (e.g. 0.25) to use them')


class Progress:
    """Counts and env steps of the sweep's cells, for the periodic progress line."""

    def __init__(self, sweep, plan, todo, skipped):
        self.sweep, self.plan, self.start = sweep, plan, time.time()
        self.todo, self.done, self.failed = list(todo), dict(skipped), {}
        self.first_steps = {run: self.steps(run) for run in todo}

    def steps(self, run):
        """(env steps done, env steps in total) from status.json, else from the flags."""
        status = self.sweep.status(run) or {}
        return status.get('env_steps', 0), status.get('total_env_steps') or self.plan.total_steps[run]

    def line(self, running):
        """Counts, ETA (the steps left at the sweep's overall speed so far), steps per running cell."""
        queued = [run for run in self.todo if run not in running]
        steps = {run: self.steps(run) for run in self.first_steps}  # ended cells' steps count too
        gained = sum(steps[run][0] - first for run, (first, _) in self.first_steps.items())
        left = sum(max(total - done, 0) for done, total in (steps[run] for run in self.todo))
        elapsed = time.time() - self.start
        eta = format_seconds(left * elapsed / gained) if gained > 0 else 'unknown'
        lines = [f'[{self.sweep.name} {format_seconds(elapsed)}] {len(self.done)} done, '
                 f'{len(running)} running, {len(queued)} queued, {len(self.failed)} failed; ETA {eta}']
        for run in running:
            done, total = steps[run]
            lines.append(f'  {run}: {done:,}/{total:,} env steps ({100 * done / total:.0f}%)')
        return '\n'.join(lines)


def run_cells(sweep, cells, opts):
    """Launch the unfinished cells on Ray, report as they end; returns the failed runs.
    Nothing but the sweep's lock is written before Ray is up and every cell fits on some node."""
    known = sweep.merge_cells(cells)
    skipped = {cell.run: status for cell in cells
               if (status := (sweep.status(cell.run) or {}).get('status')) in TERMINAL}
    pending = [cell for cell in cells if cell.run not in skipped]
    plan = Plan(pending)  # a finished cell need not fit on this machine any more
    if plan.errors and len(plan.errors) == len(cells):
        run, error = next(iter(plan.errors.items()))
        raise SweepError(f'every cell is rejected by train.py, e.g. {run}: {error.removeprefix("error: ")}')
    todo = [cell for cell in pending if cell.run not in plan.errors]
    ray = start_ray(opts) if todo else None
    try:
        if todo:
            check_fits(ray, plan, [cell.run for cell in todo], opts)
        sweep.write_cells(known)
        failed = launch(ray, sweep, plan, opts, skipped, todo)
    finally:
        if ray is not None:
            ray.shutdown()
    return failed


def launch(ray, sweep, plan, opts, skipped, todo):
    """Report the cells train.py rejects, start the others as Ray actors and wait for them."""
    failed = {}
    for run, error in plan.errors.items():
        with open(sweep.out_path(run), 'a') as out:
            out.write(error + '\n')
        sweep.record_event(run=run, rc=2, status='failed', seconds=0.0, node=None, ended=time.time())
        failed[run] = error
        print(f'FAILED   {run}: {error} (log: {sweep.out_path(run)})')
    print(f'sweep {sweep.name}: {len(skipped) + len(todo) + len(failed)} cells, {len(skipped)} already done, '
          f'{len(todo)} to run, {len(failed)} rejected; logs in {sweep.folder}')
    if not todo:
        return failed
    if __name__ != '__main__':  # imported: ship the actor's code, workers may not find this module
        ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    remote = ray.remote(max_concurrency=2)(CellProcess)
    env = cell_env(opts)
    progress = Progress(sweep, plan, [cell.run for cell in todo], skipped)
    progress.failed = failed
    launched = {}  # result ref -> (cell, actor, ready ref)
    for cell in todo:
        actor = remote.options(num_cpus=opts.threads, num_gpus=opts.gpus_per_run,
                               memory=plan.memory[cell.run]).remote()
        commands = (command(cell, sweep.logdir, opts.threads, resume) for resume in (False, True))
        ref = actor.run.remote(*commands, sweep.run_dir(cell.run), env, sweep.out_path(cell.run))
        launched[ref] = (cell, actor, actor.__ray_ready__.remote())
    try:
        wait_for_cells(ray, sweep, launched, progress, opts)
    except KeyboardInterrupt:
        stop_cells(ray, sweep, launched, progress)
        raise
    return failed


def running_runs(ray, launched):
    """Cells whose actor has started (so their train.py runs)."""
    readies = [ready for _, _, ready in launched.values()]
    started, _ = ray.wait(readies, num_returns=len(readies), timeout=0) if readies else ([], [])
    started = set(started)
    return [cell.run for cell, _, ready in launched.values() if ready in started]


def finish_cell(ray, sweep, launched, ref, progress):
    cell, actor, _ = launched.pop(ref)
    try:
        result = ray.get(ref)
    except ray.exceptions.RayError as error:
        result = {'rc': None, 'seconds': 0.0, 'node': None,
                  'error': f'its Ray worker died ({type(error).__name__})'}
    ray.kill(actor)
    if result.get('holder') is not None:
        progress.todo.remove(cell.run)
        pid = f' (pid {result["holder"]})' if result['holder'] else ''
        print(f'running  {cell.run} in another process{pid}: not started here; a re-run after it ends '
              f'picks it up')
        return
    if result['rc'] is None and result['error'] is None:
        return  # stopped before it started
    written = (sweep.status(cell.run) or {}).get('status')
    status = EXIT_STATUS.get(result['rc'], 'failed')
    if status == 'finished' and written not in (None, 'finished'):
        status = written
    sweep.record_event(run=cell.run, rc=result['rc'], status=status, seconds=round(result['seconds'], 1),
                       node=result['node'], ended=time.time())
    progress.todo.remove(cell.run)
    took = format_seconds(result['seconds'])
    if status in TERMINAL:
        progress.done[cell.run] = status
        print(f'{status:<9}{cell.run} ({took})')
    elif status == 'interrupted':
        print(f'stopped  {cell.run} ({took}); a re-run continues it')
    else:
        reason = result['error'] or f'exit {result["rc"]}: {failure_line(sweep.out_path(cell.run), result["offset"])}'
        progress.failed[cell.run] = reason
        print(f'FAILED   {cell.run}: {reason} (log: {sweep.out_path(cell.run)})')


def wait_for_cells(ray, sweep, launched, progress, opts):
    next_report = time.time() + opts.progress_every
    while launched:
        ready, _ = ray.wait(list(launched), num_returns=1,
                            timeout=max(next_report - time.time(), 0.1))
        for ref in ready:
            finish_cell(ray, sweep, launched, ref, progress)
        if time.time() >= next_report and launched:
            print(progress.line(running_runs(ray, launched)), flush=True)
            next_report = time.time() + opts.progress_every


def stop_cells(ray, sweep, launched, progress):
    """Ctrl-C: cells not started yet are dropped, running ones get SIGINT and checkpoint."""
    running = set(running_runs(ray, launched))
    print(f'\nstopping: {len(running)} running cells write a checkpoint and exit '
          f'(Ctrl-C again to stop waiting for them)', flush=True)
    for ref, (cell, actor, _) in list(launched.items()):
        if cell.run in running:
            actor.interrupt.remote()
        else:
            ray.kill(actor)
            launched.pop(ref)
    deadline = time.time() + STOP_GRACE
    try:
        while launched and time.time() < deadline:
            ready, _ = ray.wait(list(launched), num_returns=1, timeout=5)
            for ref in ready:
                finish_cell(ray, sweep, launched, ref, progress)
    except KeyboardInterrupt:
        pass


# ---- summary -------------------------------------------------------------------------------------
COLUMNS = ('run', 'status', 'steps', 'final', 'best', 'wall')


def read_curve(logdir, run):
    """(steps, test returns) per evaluation from the run's CSV, or empty lists."""
    try:
        with open(os.path.join(logdir, 'csv', f'{run}.csv'), newline='') as file:
            rows = [row for row in csv.DictReader(file) if row.get('charts/TestRewards')]
    except OSError:
        return [], []
    return [int(float(row['Steps'])) for row in rows], [float(row['charts/TestRewards']) for row in rows]


def summary_rows(sweep):
    events = sweep.events()
    rows = []
    for run in sweep.cells():
        own = [event for event in events if event['run'] == run]
        status = (sweep.status(run) or {}).get('status')
        if status in (None, 'running') and run_holder(sweep.run_dir(run)) is None:
            if own:  # rejected before a start, or its process died
                status = own[-1]['status']
            elif status == 'running':  # killed with the driver, before the driver recorded its end
                status = 'interrupted'
        steps, returns = read_curve(sweep.logdir, run)
        finite = [value for value in returns if math.isfinite(value)]
        rows.append({'run': run, 'status': status or 'pending',
                     'steps': steps[-1] if steps else 0,
                     'final': returns[-1] if returns else math.nan,
                     'best': max(finite) if finite else math.nan,
                     'wall': sum(event['seconds'] for event in own)})
    return rows


def format_table(rows):
    def cell(row, key):
        value = row[key]
        if key == 'wall':
            return format_seconds(value)
        if key in ('final', 'best'):
            return '-' if math.isnan(value) else f'{value:.1f}'
        return f'{value:,}' if key == 'steps' else str(value)
    table = [COLUMNS] + [tuple(cell(row, key) for key in COLUMNS) for row in rows]
    lines = ['| ' + ' | '.join(line) + ' |' for line in table]
    lines.insert(1, '|' + '|'.join('---' for _ in COLUMNS) + '|')
    return '\n'.join(lines)


def summarize(sweep, plots=True, norm=None, reference=None):
    """Print and save the per-cell table; add tools/plot.py's curves and aggregates if present."""
    rows = summary_rows(sweep)
    if not rows:
        raise SweepError(f'no sweep {sweep.name!r} under {sweep.logdir}/sweeps: check --name and --logdir')
    counts = {}
    for row in rows:
        counts[row['status']] = counts.get(row['status'], 0) + 1
    table = format_table(rows)
    totals = ', '.join(f'{count} {status}' for status, count in sorted(counts.items()))
    print(f'\nsweep {sweep.name}: {totals}\n{table}')
    write_atomic(os.path.join(sweep.folder, 'summary.md'),
                 lambda file: file.write(f'# sweep {sweep.name}\n\n{totals}\n\n{table}\n'))

    def write_csv(file):
        writer = csv.DictWriter(file, COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    write_atomic(os.path.join(sweep.folder, 'summary.csv'), write_csv)
    print(f'summary saved to {os.path.join(sweep.folder, "summary.md")} and summary.csv')
    if plots:
        plot_sweep(sweep, [row['run'] for row in rows if row['steps']], norm, reference)
    return rows


def plot_sweep(sweep, runs, norm=None, reference=None):
    """tools/plot.py's learning curves and (given a normalisation) aggregate statistics, grouped
    by variant (its `label`: RRD and RRD-L(RD) are both alg rrd-sac) and backend."""
    try:
        from tools import plot
    except ImportError:
        print('note: tools/plot.py is not available: no learning-curve plot or aggregate statistics')
        return
    if not runs:
        return
    cells = sweep.cells()
    logs = [os.path.join(sweep.logdir, 'csv', f'{run}.csv') for run in runs]
    runs_and_groups = [*logs, '--labels', *(cells[run]['variant'] for run in runs), '--group', 'label']
    if len({cells[run]['backend'] for run in runs}) > 1:
        runs_and_groups.append('backend')
    commands = [['curves', *runs_and_groups, '--out', os.path.join(sweep.folder, 'curves.png')]]
    if norm or reference:
        commands.append(['aggregate', *runs_and_groups, '--out', os.path.join(sweep.folder, 'aggregate.png'),
                         *(['--norm', *norm] if norm else []), *(['--reference', *reference] if reference else [])])
    else:
        print('note: aggregate statistics need a normalisation: give summary --norm ENV=MIN,MAX ... or --reference')
    for command_line in commands:
        try:
            plot.main(command_line)
        except SystemExit as stop:
            if stop.code:
                print(f'note: tools/plot.py {command_line[0]} did not finish: {stop.code}')


# ---- command line --------------------------------------------------------------------------------
def build_parser():
    parser = ArgumentParser(  # one-line errors, as train.py's
        description=__doc__.split('\n\n')[0], formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog='Give train.py flags for every cell after --, e.g. `-- --epochs=10`.')
    commands = parser.add_subparsers(dest='command', required=True)
    run = commands.add_parser('run', help='run (or continue) a sweep',
                              epilog='train.py flags for every cell go after --, e.g. `-- --epochs=10`')
    summary = commands.add_parser('summary', help='the summary table (and plots) from existing logs')
    for sub in (run, summary):
        sub.add_argument('--name', help='sweep name: tag and run-name prefix of its cells')
        sub.add_argument('--grid', help='YAML/JSON grid file (name, envs, algs, backends, seeds, '
                                        'overrides, variants, logdir); flags given here win')
        sub.add_argument('--logdir', help='root folder of all logs (default: log)')
        sub.add_argument('--norm', nargs='+', metavar='ENV=MIN,MAX',
                         help='score normalisation of the aggregate statistics (tools/plot.py aggregate)')
        sub.add_argument('--reference', nargs='+', metavar='GLOB',
                         help='reference runs that set the normalisation instead (tools/plot.py aggregate)')
    run.add_argument('--envs', nargs='+', help='env ids')
    run.add_argument('--algs', nargs='+', help='variants: <alg>[-<basis_alg>], rrd-l[-<basis>], '
                                               'or names from the grid file')
    run.add_argument('--backends', nargs='+', help='torch and/or tf (default: torch)')
    run.add_argument('--seeds', nargs='+', help='seeds and ranges, e.g. 0-9 (default: 0)')
    run.add_argument('--address', help='an existing Ray cluster (e.g. auto); default: a local instance')
    run.add_argument('--num_cpus', type=int, default=0, help='CPUs of the local instance (0: all)')
    run.add_argument('--threads', type=int, default=1, help='CPU threads (and Ray CPUs) per cell')
    run.add_argument('--gpus_per_run', type=float, default=0.0,
                     help='GPUs per cell, fractions share one (0: cells see no GPU)')
    run.add_argument('--progress_every', type=float, default=60.0, help='seconds between progress lines')
    run.add_argument('--dry_run', action='store_true', help='print the cells and their commands only')
    summary.add_argument('--no_plots', action='store_true', help='the table only')
    return parser


def check_summary_options(opts):
    """A bad --norm or --reference is refused before the sweep trains, not noted after it."""
    if getattr(opts, 'norm', None):
        from tools import plot
        try:
            plot.parse_norm(opts.norm)
        except (ValueError, OSError) as error:
            raise SweepError(str(error) if isinstance(error, ValueError) else f'--norm {opts.norm[0]}: {error.strerror}') \
                from None
    for pattern in getattr(opts, 'reference', None) or ():
        if not glob.glob(pattern, recursive=True) and not os.path.exists(pattern):
            raise SweepError(f'--reference {pattern}: no file or folder matches it')


def options(argv):
    """Parsed options with the grid file's values under the flags given."""
    argv = list(sys.argv[1:] if argv is None else argv)
    overrides = argv[argv.index('--') + 1:] if '--' in argv else []
    argv = argv[:argv.index('--')] if '--' in argv else argv
    parser = build_parser()
    opts = parser.parse_args(argv)
    grid = load_grid_file(opts.grid) if opts.grid else {}
    for key, default in (('name', None), ('logdir', 'log'), ('envs', None), ('algs', None),
                         ('backends', ['torch']), ('seeds', [0])):
        if getattr(opts, key, None) is None and hasattr(opts, key):
            setattr(opts, key, grid.get(key, default))
    if opts.name is None:
        raise SweepError('the sweep needs a name: give --name or name: in the grid file')
    check_name(opts.name, 'sweep name')
    if not opts.logdir:
        raise SweepError('--logdir is empty; pass a folder (the default is log)')
    check_summary_options(opts)
    opts.overrides = [*grid.get('overrides', []), *overrides]
    opts.variants = grid.get('variants') or {}
    if opts.command == 'run':
        if opts.threads < 1 or opts.num_cpus < 0 or opts.gpus_per_run < 0 or opts.progress_every <= 0:
            raise SweepError('--threads must be >= 1, --num_cpus, --gpus_per_run >= 0 and '
                             '--progress_every > 0')
        opts.seeds = parse_seeds(opts.seeds)
    return opts


def main(argv=None):
    try:
        opts = options(argv)
        sweep = Sweep(opts.logdir, opts.name)
        if opts.command == 'summary':
            summarize(sweep, not opts.no_plots, opts.norm, opts.reference)
            return 0
        cells = expand(opts.name, opts.envs, opts.algs, opts.backends, opts.seeds, opts.overrides,
                       sweep.logdir, opts.variants)
        if opts.dry_run:
            for cell in cells:
                print(shlex.join(command(cell, sweep.logdir, opts.threads, resume=False)[1:]))
            return 0
        with sweep.driven():
            stop_on_signals()
            try:
                failed = run_cells(sweep, cells, opts)
            except KeyboardInterrupt:
                print(f'sweep {sweep.name} stopped; run the same command again to continue')
                if sweep.cells():
                    summarize(sweep, plots=False)
                return 130
            summarize(sweep, True, opts.norm, opts.reference)
            return 1 if failed else 0
    except SweepError as error:
        print(f'error: {error}', file=sys.stderr)
        return 2


if __name__ == '__main__':
    sys.exit(main())
