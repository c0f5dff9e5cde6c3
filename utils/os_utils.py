"""Backend-free helpers: folders, boolean parsing, timing, and the training `Logger`.

No torch or tensorflow here, so both backends (and the arguments parser) can use it.

Log layout under `logdir` (default 'log'), with `name` unique per run:
    text/<name>.log        everything the logger prints
    csv/<name>.csv         the per-cycle table, one row per `tabular` call
    board/<name>/          TensorBoard scalars (tensorboardX's event files)
    rews/<tag>/<name>/<env>.npz   test returns per evaluation point (`save_npz`); with an empty
                           tag rews/<name>/<env>.npz
    models/<name>/         config.json, status.json, .lock and the checkpoints (train.py)
    wandb/                 the Weights & Biases run files and <name>.id, with --track (utils/tracking.py)
Every file is created with the usual mode (0666 less the umask: 0644 by default).
"""
import argparse
import contextlib
import copy
import csv
import errno
import logging
import math
import os
import re
import shutil
import sys
import tempfile
import time

import numpy as np

try:
    import fcntl
except ImportError:  # Windows: runs go unlocked
    fcntl = None

_TRUE = ('true', 'yes', '1')
_FALSE = ('false', 'no', '0')


def str2bool(value):
    """Parse true/false/yes/no/1/0 (any case). argparse prefixes the flag name to the error."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise argparse.ArgumentTypeError(
        f'expected a boolean (true/false/yes/no/1/0), got {value!r}')


def make_dir(path, clear=False):
    """Create `path` (and parents) if missing; with `clear`, empty it first."""
    if clear and os.path.exists(path):
        shutil.rmtree(path)
    os.makedirs(path, exist_ok=True)
    return path


def format_seconds(seconds):
    """'H:MM:SS' (or '-' when unknown), for the time-left column."""
    if seconds is None or not math.isfinite(seconds):
        return '-'
    seconds = int(round(seconds))
    return f'{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}'


class Timer:
    """Wall-clock speed and time-left estimates from the caller's progress counters.

    The time left is extrapolated from the laps that trained only: a run's first cycles store
    warmup steps without updates and are several times faster than the rest, so the average
    over all laps would promise far too little time. Until a lap has trained it is unknown.
    `state` / `restore` carry the estimate (and the elapsed time) across a resumed run."""

    def __init__(self):
        self.start = self.last_time = time.time()
        self.last_steps, self.last_fraction = 0, 0.0
        self.trained_time = self.trained_fraction = 0.0  # duration and share of training laps

    def lap(self, steps, fraction, trained=True):
        """`steps`: env steps so far; `fraction`: share of the run done, in (0, 1]; `trained`:
        whether this lap ran updates.

        Returns env steps per second since the previous lap, elapsed seconds, and the time
        left at the average speed of the training laps."""
        now = time.time()
        dt = now - self.last_time
        speed = (steps - self.last_steps) / dt if dt > 0 else math.nan
        if trained:
            self.trained_time += dt
            self.trained_fraction += fraction - self.last_fraction
        left = self.trained_time * (1 - fraction) / self.trained_fraction if self.trained_fraction > 0 else math.nan
        self.last_time, self.last_steps, self.last_fraction = now, steps, fraction
        return {'steps_per_sec': speed, 'elapsed': now - self.start, 'time_left': left}

    def state(self):
        now = time.time()
        return {'elapsed': now - self.start, 'since_lap': now - self.last_time, 'last_steps': self.last_steps,
                'last_fraction': self.last_fraction, 'trained_time': self.trained_time,
                'trained_fraction': self.trained_fraction}

    def restore(self, state):
        """Continue from `state`; the time between that state and now (a killed run's lost
        work) is not counted."""
        now = time.time()
        self.start, self.last_time = now - state['elapsed'], now - state['since_lap']
        self.last_steps, self.last_fraction = state['last_steps'], state['last_fraction']
        self.trained_time, self.trained_fraction = state['trained_time'], state['trained_fraction']


NAME_PATTERN = re.compile(r'[A-Za-z0-9._+=-]+')


def check_name(text, what):
    """`text` if it is a plain name ([A-Za-z0-9._+=-], not '.' or '..'), which can only ever name a
    file or folder inside its parent; else ValueError naming `what`."""
    if not NAME_PATTERN.fullmatch(text) or text in ('.', '..'):
        raise ValueError(f'{what} {text!r} is not a plain name: use letters, digits and . _ + = - '
                         f'(not a path, and not "." or "..")')
    return text


def run_name(args=None, tag='', env=None, alg=None, timestamp=None):
    """'<tag>-<env>-<alg>[-<basis_alg>]-<backend>-seed<seed>-<YYYYmmdd-HHMMSS>' (empty parts
    dropped), or `args.run_name` when set; file-name safe."""
    if getattr(args, 'run_name', None):
        return args.run_name
    if args is not None:
        tag, env, alg = args.tag, args.env, args.alg
    parts = [tag, env, alg, getattr(args, 'basis_alg', None), getattr(args, 'backend', None)]
    if args is not None and getattr(args, 'seed', None) is not None:
        parts.append(f'seed{args.seed}')
    parts.append(timestamp or time.strftime('%Y%m%d-%H%M%S'))
    name = '-'.join(str(part) for part in parts if part)
    return re.sub(r'[^A-Za-z0-9._+=-]', '_', name)


RUN_LOCK = '.lock'  # in <logdir>/models/<run>/, held by the process that runs the run
RUN_BUSY_EXIT = 75  # train.py's exit status when the run is live in another process (sysexits' EX_TEMPFAIL)


class RunLocked(RuntimeError):
    """Another live process runs this run; `pid` is its process id as text ('' if unknown)."""

    def __init__(self, run_dir, pid):
        super().__init__(f'run {os.path.basename(run_dir)} is running in another process'
                         + (f' (pid {pid})' if pid else ''))
        self.pid = pid


def _flock(file, exclusive, tries=1):
    """True once `file` is locked, False while another process holds it (after `tries` attempts
    0.05 s apart: a probe's shared lock lasts microseconds), None where there are no file locks
    (Windows, some network file systems)."""
    if fcntl is None:
        return None
    for attempt in range(tries):
        try:
            fcntl.flock(file, (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if attempt + 1 < tries:
                time.sleep(0.05)
        except OSError as error:
            if error.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS):
                return None
            raise
    return False


@contextlib.contextmanager
def hold_run(run_dir):
    """Hold `<run_dir>/.lock` while this process runs the run, so that no second process (a sweep
    restarted while its runs still go, a --resume typed too early) writes the same files. The OS
    releases it however the process ends, kill -9 included."""
    os.makedirs(run_dir, exist_ok=True)
    with open(os.path.join(run_dir, RUN_LOCK), 'a+') as file:
        locked = _flock(file, exclusive=True, tries=3)
        if locked is False:
            file.seek(0)
            raise RunLocked(run_dir, file.read().strip())
        if locked is None:
            logging.getLogger(__name__).warning('%s has no file locks: nothing stops a second process from '
                                                'resuming this run while it goes', run_dir)
        file.seek(0)
        file.truncate()
        file.write(f'{os.getpid()}\n')
        file.flush()
        yield


def run_holder(run_dir):
    """The pid (as text, '' if unknown) of the live process running the run in `run_dir`, or None
    (also where there are no file locks)."""
    try:
        file = open(os.path.join(run_dir, RUN_LOCK))
    except FileNotFoundError:
        return None
    with file:  # closing it drops the probe's own lock
        return file.read().strip() if _flock(file, exclusive=False) is False else None


def file_mode():
    """The mode `open` gives a new file (0666 less the umask), for files made by mkstemp (0600)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def write_atomic(path, write, binary=False):
    """Call `write(file)` on a temporary file next to `path`, then move it into place: a run killed
    mid-write, or a reader polling the file, never sees a truncated file."""
    folder = make_dir(os.path.dirname(path) or '.')
    fd, tmp = tempfile.mkstemp(dir=folder, prefix='.' + os.path.basename(path), suffix='.tmp')
    try:
        os.fchmod(fd, file_mode())
        with os.fdopen(fd, 'wb' if binary else 'w') as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


# Console label and format of the keys `Logger.add_timing` records.
TIME_ITEMS = {'time/steps_per_sec': ('steps/s', '{:.1f}'),
              'time/elapsed': ('Elapsed', format_seconds),
              'time/time_left': ('TimeLeft', format_seconds)}


def _to_number(value):
    """Scalars and arrays (averaged) to a Python int or float, so sums don't depend on dtype."""
    if np.ndim(value):
        return float(np.mean(value))
    if isinstance(value, (bool, np.bool_)):
        return int(value)
    return int(value) if isinstance(value, (int, np.integer)) else float(value)


def _on_device(value):
    """Whether `value` is a tensor on an accelerator (checked by duck typing: this module imports
    neither backend). Reading one waits for the device, so the logger sums such values where they
    are and reads the sum once, when the cycle closes: no host sync in the training loop."""
    return getattr(getattr(value, 'device', None), 'type', 'cpu') != 'cpu'


def _average(total, count):
    """Cycle average; integer records (Epoch, Steps) whose average is whole stay ints."""
    if _on_device(total):
        total = float(total)  # the cycle's one read of a device-side sum
    if isinstance(total, int) and total % count == 0:
        return total // count
    return total / count


def run_paths(logdir, name):
    """The run `name`'s text log, CSV, TensorBoard folder and run folder (config, status,
    checkpoints) under `logdir`."""
    return (os.path.join(logdir, 'text', name + '.log'),
            os.path.join(logdir, 'csv', name + '.csv'),
            os.path.join(logdir, 'board', name),
            os.path.join(logdir, 'models', name))


def import_tensorboardx():
    """tensorboardX's event-file parts, imported without torch when this process has not loaded it.

    tensorboardX imports torch whenever it can (to accept torch tensors); the Logger writes plain
    floats, so a TensorFlow run would load torch for nothing: ~180 MB of memory and its import
    time. A torch run has loaded torch already (its agent is built first) and is unaffected."""
    if 'torch' not in sys.modules:
        sys.modules['torch'] = None  # `import torch` raises ImportError while this entry stands
        try:
            return import_tensorboardx()
        finally:
            del sys.modules['torch']
    from tensorboardX.event_file_writer import EventsWriter
    from tensorboardX.proto.event_pb2 import Event, SessionLog
    from tensorboardX.summary import scalar
    return EventsWriter, Event, SessionLog, scalar


class ScalarEvents:
    """TensorBoard scalars, each written to the events file as it is added; `flush` puts them in
    the file. tensorboardX's SummaryWriter hands events to a background thread and its flush does
    not wait for them, so a run killed right after a cycle lost some of that cycle's scalars for
    good (its resume hides only the steps after its checkpoint). The file is SummaryWriter's:
    same name, and with `purge_step` the marker from which TensorBoard drops earlier files' events."""

    def __init__(self, logdir, purge_step=None, filename_suffix=''):
        events_writer, self.event, session_log, self.summary = import_tensorboardx()
        os.makedirs(logdir, exist_ok=True)
        self.events = events_writer(os.path.join(logdir, 'events'), filename_suffix)
        if purge_step is not None:
            self.events.write_event(self.event(step=purge_step, file_version='brain.Event:2'))
            self.events.write_event(self.event(step=purge_step, session_log=session_log(status=session_log.START)))

    def add_scalar(self, tag, value, step):
        self.events.write_event(self.event(wall_time=time.time(), step=step, summary=self.summary(tag, value)))

    def flush(self):
        self.events.flush()

    def close(self):
        self.events.close()


class Logger:
    """Console + text log, per-cycle averaged table (console, CSV), TensorBoard and npz output.

    Usage by the learner:
        logger.add_item('Epoch'); logger.add_item('losses/Q_loss') ...   # table columns
        logger.add_dict(agent.train(batch), prefix='losses/')           # after every update
        logger.add_record('charts/TestRewards', mean_return)            # once per cycle
        logger.add_timing(steps, fraction)                              # steps/s, time left
        logger.tabular(steps)                                           # end of the cycle

    Keys are TensorBoard tags ('losses/Q_loss', 'charts/TestRewards', 'time/steps_per_sec');
    the console shows the part after the last '/' (or the label given to `add_item`), the CSV
    the full key. Numeric records are averaged over the cycle; strings keep the last value and
    go to the table only. Columns are the registered items, or, if none were registered, the
    keys of the first row; they are fixed then, and later rows leave missing keys empty. Apart
    from 'time/*' keys and the start time in the log header, output depends only on the values
    recorded, so two seeded runs produce identical tables.
    """

    def __init__(self, args=None, logdir=None, name=None, tag=None, env=None, echo=True,
                 tensorboard=True, header_every=20, resume=None, exact_name=False):
        """`resume`: a `state` of this run's logger; the run `name` then continues its files: the
        text log is appended to, the CSV cut back to the rows written before that state, the
        TensorBoard events from its step on hidden (`purge_step`), the timer and the records of a
        partly done cycle restored. `exact_name`: the run is `name` even when files of that name
        exist (left by a start that failed early; the caller holds the run's lock), never `name-1`."""
        self.logdir = logdir or getattr(args, 'logdir', None) or 'log'
        self.tag = tag if tag is not None else getattr(args, 'tag', '')
        self.env = env if env is not None else getattr(args, 'env', None)
        base = name or run_name(args, tag=self.tag, env=self.env)
        self.name, suffix = base, 0
        while resume is None and not exact_name and not self._claim(self.name):
            suffix += 1  # another run started in the same second: don't overwrite it
            self.name = f'{base}-{suffix}'
        self.text_path, self.csv_path, self.board_dir, self.run_dir = self._paths(self.name)
        self.npz_path = os.path.join(self.logdir, 'rews', self.tag or '', self.name, f'{self.env}.npz')
        self.tracker = self.writer = self._text = self._csv = None
        try:
            self._open(args, echo, header_every, tensorboard, resume)
        except BaseException:  # e.g. a failed W&B login: no file of the run is left behind
            self.close()
            if resume is None and not exact_name:
                self._unclaim()
            raise

    def _open(self, args, echo, header_every, tensorboard, resume):
        if getattr(args, 'track', False):
            from utils.tracking import Tracker
            self.tracker = Tracker(args, self.name, self.logdir, resume=resume is not None)
        make_dir(os.path.dirname(self.text_path))  # a resumed or exactly named run claimed nothing
        self._text = open(self.text_path, 'a', buffering=1)
        self.echo, self.header_every = echo, header_every
        self.timer = Timer()
        self.items = {}         # registered columns: key -> (label, fmt)
        self.columns = None     # fixed at the first `tabular`
        self._records = {}      # key -> [sum, count] or a string
        self._rows = 0
        self._append_csv, self._header_due = False, True  # a resumed run's console gets a header too
        purge_step = None
        if resume is not None:
            self._rows, self._records = resume['rows'], copy.deepcopy(resume['records'])
            self._append_csv = self._rows > 0
            if resume['timer'] is not None:
                self.timer.restore(resume['timer'])
            purge_step = resume['step'] + 1
            self._cut_csv(self._rows)
        if tensorboard:
            # a file of its own even within the second the earlier one was started (same file name)
            suffix = f'.resumed-at-{purge_step}' if resume is not None else ''
            self.writer = ScalarEvents(self.board_dir, purge_step=purge_step, filename_suffix=suffix)
        verb = 'resumed' if resume is not None else 'started'
        self.print(f'# {self.name} ({verb} {time.strftime("%Y-%m-%d %H:%M:%S")})')

    def _unclaim(self):
        """Give the name back after a failed start: the run's text log (still empty) and its
        TensorBoard folder while it is empty."""
        if os.path.exists(self.text_path) and os.path.getsize(self.text_path) == 0:
            os.unlink(self.text_path)
        for folder in (os.path.dirname(self.text_path), self.board_dir, os.path.dirname(self.board_dir)):
            with contextlib.suppress(OSError):  # not empty: files (other runs' logs) keep it
                os.rmdir(folder)

    def _claim(self, name):
        """Whether the name was free and is now this run's: no file of the run exists, and its text
        log was created here, exclusively (two runs started in the same second, even in different
        processes, never get one name)."""
        if any(os.path.exists(path) for path in self._paths(name)):
            return False
        text_path = self._paths(name)[0]
        make_dir(os.path.dirname(text_path))
        try:
            os.close(os.open(text_path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, file_mode()))
        except FileExistsError:
            return False
        return True

    def _paths(self, name):
        return run_paths(self.logdir, name)

    def _cut_csv(self, rows):
        """Keep the header (the columns from now on) and the first `rows` rows: later ones are
        redone by the resumed run."""
        if not os.path.exists(self.csv_path):
            return
        with open(self.csv_path, newline='') as file:
            kept = list(csv.reader(file))[:rows + 1]
        write_atomic(self.csv_path, lambda file: csv.writer(file).writerows(kept))
        self.columns = kept[0] if kept else None

    def state(self, step):
        """What a resumed run needs to continue these files after env step `step`."""
        return {'rows': self._rows, 'records': copy.deepcopy(self._records), 'timer': self.timer.state(),
                'step': int(step)}

    def print(self, *values, sep=' ', file=None):
        """Print to the console (if `echo`; to `file`, default stdout) and append to the text log."""
        line = sep.join(str(value) for value in values)
        if self.echo:
            print(line, flush=True, file=file)
        self.write_text(line)

    def write_text(self, line):
        """Append `line` to the text log only (printed elsewhere already, e.g. by `logging`)."""
        self._text.write(line + '\n')

    info = print

    def add_item(self, key, label=None, fmt=None):
        """Register a table column. `fmt`: a format string like '{:.2f}' or a callable."""
        default_label, default_fmt = TIME_ITEMS.get(key, (key.rsplit('/', 1)[-1], None))
        self.items[key] = (label or default_label, fmt or default_fmt)

    def add_record(self, key, value, count=1):
        """Accumulate `value` (scalar or array, weighted by `count`) for the cycle average."""
        if isinstance(value, str):
            self._records[key] = value
            return
        total = self._records.setdefault(key, [0, 0])
        if _on_device(value):  # summed on the device in float64, like the Python floats below
            total[0] = total[0] + value.detach().double().mean() * count
        else:
            total[0] += _to_number(value) * count
        total[1] += count

    def add_dict(self, info, prefix='', count=1):
        """`add_record` for every item, keys prefixed (e.g. prefix='losses/')."""
        for key, value in info.items():
            self.add_record(prefix + key, value, count)

    def add_timing(self, steps, fraction, trained=True):
        """Record 'time/steps_per_sec', 'time/elapsed' and 'time/time_left' (seconds); `trained`:
        whether the cycle ran updates (see `Timer`)."""
        for key, value in self.timer.lap(steps, fraction, trained).items():
            self._records['time/' + key] = [value, 1]

    def tabular(self, step):
        """Close the cycle: average the records, print a table row, append it to the CSV,
        write TensorBoard scalars at `step`; returns the row {key: value} and resets."""
        row = {key: record if isinstance(record, str) else _average(*record)
               for key, record in self._records.items()}
        self._records = {}
        if self.columns is None:
            self.columns = list(self.items) or list(row)
        for key in self.columns:
            if key not in self.items:
                self.add_item(key)
        self._print_row(row)
        self._write_csv(row)
        # Unknown values (TimeLeft before the first update, a correlation of a constant reward) stay
        # in the table and CSV; TensorBoard and W&B get finite numbers only (tensorboardX would
        # print a warning for each).
        scalars = {key: value for key, value in row.items()
                   if not isinstance(value, str) and math.isfinite(value)}
        if self.writer is not None:
            for key, value in scalars.items():
                self.writer.add_scalar(key, value, step)
            self.writer.flush()
        if self.tracker is not None:
            self.tracker.log(scalars, step)
        return row

    def _cell(self, key, row):
        label, fmt = self.items[key]
        if key not in row:
            return ''
        value = row[key]
        if callable(fmt):
            return fmt(value)
        if fmt:
            return fmt.format(value)
        if isinstance(value, (str, int)):
            return str(value)
        return f'{value:.4g}' if abs(value) < 1e4 else f'{value:.0f}'

    def _print_row(self, row):
        widths = [max(10, len(self.items[key][0])) for key in self.columns]
        if self._rows % self.header_every == 0 or self._header_due:
            self._header_due = False
            self.print(' '.join(self.items[key][0].rjust(w) for key, w in zip(self.columns, widths)))
        self.print(' '.join(self._cell(key, row).rjust(w) for key, w in zip(self.columns, widths)))
        self._rows += 1

    def _write_csv(self, row):
        if self._csv is None:
            make_dir(os.path.dirname(self.csv_path))
            append = self._append_csv and os.path.exists(self.csv_path)
            self._csv_file = open(self.csv_path, 'a' if append else 'w', newline='')
            self._csv = csv.writer(self._csv_file)
            if not append:
                self._csv.writerow(self.columns)
        self._csv.writerow([repr(row[key]) if isinstance(row.get(key), float) else row.get(key, '')
                            for key in self.columns])
        self._csv_file.flush()

    def save_npz(self, steps, rewards, std=None, path=None, **extra):
        """Write `steps` and `rewards` (mean test return per evaluation point), `info` (their
        [N, 2] float64 rows: the original release's only key), `std` if given, and any `extra`
        arrays to `<logdir>/rews/<tag>/<name>/<env>.npz` (or `path`), atomically."""
        path = path or self.npz_path
        arrays = {'steps': np.asarray(steps, dtype=np.int64),
                  'rewards': np.asarray(rewards, dtype=np.float64)}
        arrays['info'] = np.stack([arrays['steps'], arrays['rewards']], axis=1).astype(np.float64).reshape(-1, 2)
        if std is not None:
            arrays['std'] = np.asarray(std, dtype=np.float64)
        arrays.update({key: np.asarray(value) for key, value in extra.items()})
        return write_atomic(path, lambda file: np.savez(file, **arrays), binary=True)

    def close(self):
        if self.writer is not None:
            self.writer.close()
            self.writer = None
        if self.tracker is not None:
            self.tracker.close()
            self.tracker = None
        if self._csv is not None:
            self._csv_file.close()
            self._csv = None
        if self._text is not None and not self._text.closed:
            self._text.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
