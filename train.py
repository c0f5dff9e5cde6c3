"""Train an agent: `python train.py --alg=rrd --basis_alg=sac --env=Ant-v2` (see --help).

A run keeps everything it writes to itself (names in utils/os_utils.py), and its folder
`<logdir>/models/<run>/` holds `config.json` (its flags), `status.json` (progress, read by
tools/sweep.py) and its checkpoints. Run checkpoints (algorithm/checkpoint.py) are written every
`--save_freq` cycles, at the end and on SIGINT/SIGTERM; `--resume` continues from the newest:
    python train.py --resume log/models/<run>        (or --resume <run> [--logdir ...])
    python train.py --resume --env Hopper-v2 --seed 1  (the newest run matching these flags)
A resumed run appends to the same text log, CSV (cut back to the checkpoint's rows, so every
evaluation point appears once), TensorBoard run and npz. On the torch backend, on the same
machine, it continues exactly as the uninterrupted run would have: same rows, same npz. On TF the
graph-level random ops (SAC's and TD3's action noise, dropout-free but seeded per graph) restart
their streams from the graph seed, which cannot be saved: a TF run resumes with the exact
weights, optimiser slots, counters, buffer and numpy/Python RNGs, and records every evaluation
point once, but its curve after the resume is another sample of the same training.

Exit status: 0 done (or nothing to resume), 2 bad input, 130 / 143 stopped by SIGINT / SIGTERM
(checkpoint written, resume command printed), 3 stopped on a non-finite loss (the last good
checkpoint is kept), 75 the run is live in another process (nothing done; try again later),
1 out of memory (one line) or any other error (with its traceback).
"""
import argparse
import contextlib
import glob
import io
import json
import logging
import math
import os
import random
import shlex
import shutil
import signal
import sys
import time

import numpy as np

from algorithm import BackendError, create_agent, select_backend
from algorithm.checkpoint import (CheckpointError, agent_path, capture_rngs, load_run_buffer, load_run_state,
                                  restore_rngs, run_checkpoints, save_run_checkpoint)
from algorithm.replay_buffer import create_buffer
from arguments import check_run, get_args
from envs import make_env
from learner import Learner, Tester
from learner.tester import TestsAborted
from utils.os_utils import RUN_BUSY_EXIT, Logger, RunLocked, check_name, hold_run, run_paths, write_atomic
from utils.tracking import TrackingError

CONFIG, STATUS = 'config.json', 'status.json'
EXIT_BAD_INPUT, EXIT_DIVERGED = 2, 3
SIGNAL_EXIT = {signal.SIGINT: 130, signal.SIGTERM: 143}
REPEAT_AFTER = 1.0  # seconds: a signal within this of the first is the same stop, forwarded
NOT_FLAGS = ('env_category', 'discrete', 'resume')  # parsed, but derived or per invocation
NOT_COMPARED = ('resume', 'logdir', 'help')  # may differ between a run and its resume


class UsageError(ValueError):
    """A bad command line found after parsing (exit status 2)."""


def set_global_seeds(seed, backend):
    """The one seeding point: Python, numpy (buffers, exploration) and torch when it runs.
    TF agents seed their own graphs from args.seed; envs are seeded at their first reset."""
    random.seed(seed)
    np.random.seed(seed)
    if backend == 'torch':
        import torch
        torch.manual_seed(seed)


def describe_env(args, env):
    args.obs_dims, args.acts_dims, args.discrete = list(env.obs_dims), list(env.acts_dims), env.discrete


def register_columns(logger, agent, args):
    for key in ('Epoch', 'Cycle', 'Episodes', 'Steps', 'time/steps_per_sec', 'time/time_left'):
        logger.add_item(key)
    logger.add_item('charts/TestRewards')
    for key in agent.train_info:
        logger.add_item('losses/' + key)
    for key in agent.step_info:
        logger.add_item('charts/' + key)
    if args.discrete:
        logger.add_item('charts/Epsilon')
    if args.alg == 'rrd':  # learner/diagnostics.py: how well the proxy reward tracks the true one
        logger.add_item('charts/ProxyCorr')
        logger.add_item('charts/DecompError')


def checkpoint_path(args, logger, epoch):
    """Where --save_model puts the agent at the end of `epoch` (a run checkpoint holds more)."""
    path = os.path.join(logger.run_dir, f'epoch{epoch}')
    return path + '.pt' if args.backend == 'torch' else path


def write_json(path, value):
    write_atomic(path, lambda file: json.dump(value, file, indent=1))


def read_json(path):
    try:
        with open(path) as file:
            return json.load(file)
    except (OSError, ValueError) as error:  # a damaged file (a full disk, an edit)
        raise UsageError(f'{path} is not readable JSON ({type(error).__name__}: {error}); restore it, '
                         f'or start a new run') from None


def read_status(run_dir):
    """The run's status.json; {} when it is missing or damaged (it is rewritten as the run goes on)."""
    try:
        return read_json(os.path.join(run_dir, STATUS))
    except UsageError:
        return {}


def resume_command(run_dir):
    """The command line that continues the run in `run_dir`."""
    python = os.path.basename(sys.executable)
    if os.path.realpath(shutil.which(python) or '') != os.path.realpath(sys.executable):
        python = sys.executable
    script = os.path.relpath(os.path.abspath(__file__))
    if script.startswith('..'):
        script = os.path.abspath(__file__)
    return shlex.join([python, script, '--resume', run_dir])


def write_status(args, run_dir, status, env_steps=0, cycles_done=0):
    """`<run_dir>/status.json`; epoch and cycle are those running now (the last once finished)."""
    total_cycles = args.epochs * args.cycles
    epoch, cycle = divmod(min(cycles_done, total_cycles - 1), args.cycles)
    write_json(os.path.join(run_dir, STATUS), {
        'run': os.path.basename(run_dir), 'status': status, 'env_steps': env_steps,
        'total_env_steps': total_cycles * args.iterations * args.timesteps, 'epoch': epoch, 'cycle': cycle,
        'updated': time.strftime('%Y-%m-%dT%H:%M:%S%z'), 'resume': resume_command(run_dir)})


# ---- stops ------------------------------------------------------------------------------------------
class StopSignals:
    """SIGINT and SIGTERM only set a flag, read by the learner between env steps and updates: the
    current update finishes, a checkpoint is written, and a second Ctrl-C during that save changes
    nothing (the files are written atomically anyway). During the test episodes (minutes on
    Atari) the first signal says that the run stops after them; a second one stops at once, and
    the run then resumes from its last checkpoint (a test cannot be saved half-way)."""

    def __init__(self):
        self.signum, self.learner, self.tester, self._previous = None, None, None, {}
        self.testing, self.first_signal = False, None

    def __enter__(self):
        for signum in SIGNAL_EXIT:
            self._previous[signum] = signal.signal(signum, self.handle)
        return self

    def __exit__(self, *exc):
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)

    def handle(self, signum, frame):
        if self.testing and self.signum is not None:
            # a second Ctrl-C, not the first one forwarded again (tools/runner.py, a sweep, a cluster
            # scheduler signal the run as well as the terminal does)
            if time.monotonic() - self.first_signal > REPEAT_AFTER:
                self.tester.abort_requested = True  # read after each test step (Tester.rollout)
            return
        if self.signum is None:
            self.first_signal = time.monotonic()
        self.signum = self.signum or signum
        self.watch(self.learner, self.tester)
        if self.testing:
            name = signal.Signals(signum).name
            sys.stderr.write(f'{name}: stopping after the test episodes of this cycle; {name} again stops now '
                             f'(the run then resumes from its last checkpoint)\n')

    @contextlib.contextmanager
    def during_tests(self):
        self.testing = True
        try:
            yield
        finally:
            self.testing = False

    def watch(self, learner, tester=None):
        self.learner, self.tester = learner, tester
        if learner is not None and self.signum is not None:
            learner.stop_requested = True


# ---- resuming ---------------------------------------------------------------------------------------
def given_flags(argv):
    """Names of the flags on the command line."""
    return {token[2:].split('=', 1)[0] for token in argv if token.startswith('--')} - set(NOT_COMPARED)


def differences(config, args, names):
    return [f'--{name} {getattr(args, name)!r} (the run has {config.get(name)!r})'
            for name in sorted(names) if hasattr(args, name) and config.get(name) != getattr(args, name)]


def find_run(resume, logdir):
    """The run folder `--resume RUN` names: the folder itself, or `<logdir>/models/<RUN>`."""
    if os.path.isfile(os.path.join(resume, CONFIG)):
        return os.path.normpath(resume)
    try:
        name = check_name(resume, '--resume')
    except ValueError:
        raise UsageError(f'--resume {resume!r}: no run folder there (a run folder holds {CONFIG}); '
                         f'give a run name or its <logdir>/models/<run> folder') from None
    run_dir = os.path.join(logdir, 'models', name)
    if not os.path.isfile(os.path.join(run_dir, CONFIG)):
        raise UsageError(f'--resume {name}: no run {name!r} in {logdir}/models; give a run folder, or '
                         f'--logdir where the run is')
    return run_dir


def run_selection(config):
    """The flags of a saved run that decide which flags exist and the derived ones (env category,
    discrete): its env and algorithm."""
    return [f'--{key}={config[key]}' for key in ('env', 'alg', 'basis_alg', 'optimizer')
            if config.get(key) is not None]


def quietly_run_flags(config, argv):
    """`argv` parsed as flags of the run `config` describes; None, without a word, when they are
    not flags of that run (a bare --resume tries every run)."""
    with contextlib.redirect_stderr(io.StringIO()):
        try:
            return get_args(run_selection(config) + list(argv))
        except SystemExit:
            return None


def newest_matching_run(logdir, argv, names):
    """The most recently updated run in `logdir` whose flags agree with the given ones."""
    matches = []
    for path in glob.glob(os.path.join(glob.escape(logdir), 'models', '*', CONFIG)):
        try:
            config = read_json(path)
        except UsageError as error:  # one damaged run must not hide the others
            logging.getLogger(__name__).warning('skipping a run: %s', error)
            continue
        args = quietly_run_flags(config, argv)
        if args is not None and not differences(config, args, names):
            status = os.path.join(os.path.dirname(path), STATUS)
            matches.append((os.path.getmtime(status if os.path.exists(status) else path), os.path.dirname(path)))
    if not matches:
        given = ' '.join(f'--{name}' for name in sorted(names)) or 'no flags'
        raise UsageError(f'--resume: no run in {logdir}/models matches the flags given ({given}); '
                         f'name the run (--resume RUN) or start a new one without --resume')
    return max(matches)[1]


def parse_args(argv):
    """`get_args`, and for `--resume` the resumed run's saved flags; `args.resume` is then the run
    folder. Flags given with --resume must agree with the saved ones."""
    pre = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    pre.add_argument('--resume', nargs='?', const='', default=None)
    pre.add_argument('--logdir', default='log')
    known, _ = pre.parse_known_args(argv)
    if known.resume is None:
        args = get_args(argv)
        args.resume = None
        return args
    if not known.resume and {'-h', '--help'} & set(argv):  # the help, not a search for the run it would resume
        return get_args(argv)
    names = given_flags(argv)
    if known.resume:
        run_dir = find_run(known.resume, known.logdir)
    else:
        run_dir = newest_matching_run(known.logdir, argv, names)
    config = read_json(os.path.join(run_dir, CONFIG))
    args = get_args(run_selection(config) + list(argv))
    diffs = differences(config, args, names)
    if diffs:
        raise UsageError(f'--resume {os.path.basename(run_dir)}: {"; ".join(diffs)}; a resumed run '
                         f'keeps its flags, so leave these out (or start a new run)')
    vars(args).update(config)
    args.logdir = os.path.dirname(os.path.dirname(run_dir)) or '.'
    args.resume = run_dir
    return args


# ---- a run ------------------------------------------------------------------------------------------
class Training:
    """The epoch/cycle loop around the learner and the tester, with checkpoints and status."""

    def __init__(self, args, agent, buffer, logger, learner, tester):
        self.args, self.agent, self.buffer, self.logger = args, agent, buffer, logger
        self.learner, self.tester = learner, tester
        self.run_dir = logger.run_dir
        self.total_cycles = args.epochs * args.cycles
        self.cycles_done = 0
        self.checkpoints_written = 0  # over every segment of the run: paces --buffer_save_freq
        self.last_checkpoint = None  # (path, cycles_done, env_steps, updates) of the newest one

    # ---- state ----
    def state(self):
        return {'cycles_done': self.cycles_done, 'checkpoints_written': self.checkpoints_written,
                'episodes': self.buffer.ep_counter, 'learner': self.learner.state(),
                'tester': self.tester.state(), 'logger': self.logger.state(self.learner.env_steps), 'rngs': capture_rngs(self.args.backend)}

    def restore(self, path, state):
        """Continue from the checkpoint at `path`, whose agent and buffer `restore_checkpoint` and
        whose logger state the logger already took."""
        if state['buffer'] is None:
            self.buffer.ep_counter = state['episodes']
            self.logger.print(f'{path} holds no replay buffer (--buffer_save_freq '
                              f'{self.args.buffer_save_freq}): it refills from scratch, with a new warmup')
        self.learner.restore(state['learner'])
        self.tester.restore(state['tester'])
        self.cycles_done, self.checkpoints_written = state['cycles_done'], state['checkpoints_written']
        restore_rngs(state['rngs'], self.args.backend)
        self.last_checkpoint = (path, self.cycles_done, self.learner.env_steps, self.learner.updates)
        self.save_npz()
        epoch, cycle = divmod(self.cycles_done, self.args.cycles)
        self.logger.print(f'resumed from {path} at env step {self.learner.env_steps} '
                          f'(epoch {epoch}, cycle {cycle})')

    def write_status(self, status):
        write_status(self.args, self.run_dir, status, self.learner.env_steps, self.cycles_done)

    def save_npz(self):
        """The npz always holds the evaluation points of the newest checkpoint (or more, at epoch
        ends); a resume rewrites it from the restored record."""
        if not self.args.save_rews:
            return None
        if self.tester.steps:
            return self.tester.epoch_summary()
        if os.path.exists(self.logger.npz_path):
            os.unlink(self.logger.npz_path)
        return None

    def checkpoint(self, final=False):
        """A run checkpoint now, unless the newest one already is at this point."""
        here = (self.cycles_done, self.learner.env_steps, self.learner.updates)
        if self.last_checkpoint is not None and self.last_checkpoint[1:] == here:
            return self.last_checkpoint[0]
        every = self.args.buffer_save_freq
        with_buffer = every > 0 and not final and self.checkpoints_written % every == 0
        state = self.state()
        path = save_run_checkpoint(self.run_dir, self.agent, state, self.buffer if with_buffer else None,
                                   keep=self.args.keep_checkpoints)
        self.checkpoints_written += 1
        self.last_checkpoint = (path, *here)
        self.save_npz()
        return path

    # ---- the loop ----
    def nonfinite_loss(self, row):
        return next((key for key, value in row.items() if key.startswith('losses/')
                     and isinstance(value, float) and not math.isfinite(value)), None)

    def end_cycle(self, stop):
        """Test, log the cycle's row; False if a loss diverged."""
        learner, steps = self.learner, self.learner.env_steps
        with stop.during_tests():
            self.tester.cycle_summary(steps)
        epoch, cycle = divmod(self.cycles_done, self.args.cycles)
        self.logger.add_dict({'Epoch': epoch, 'Cycle': cycle, 'Episodes': self.buffer.ep_counter, 'Steps': steps})
        self.logger.add_timing(steps, (self.cycles_done + 1) / self.total_cycles, trained=learner.warm)
        row = self.logger.tabular(steps)
        loss = self.nonfinite_loss(row)
        if loss is not None:
            kept = self.last_checkpoint[0] if self.last_checkpoint else 'none was written'
            self.logger.print(f'error: {loss} is {row[loss]} at env step {steps} (update {learner.updates}); '
                              f'training diverged and stopped; the last good checkpoint is kept ({kept})',
                              file=sys.stderr)
            return False
        self.cycles_done += 1
        if self.cycles_done % self.args.cycles == 0:
            npz = self.tester.epoch_summary()
            if npz:
                self.logger.print(f'saved test returns to {npz}')
            if self.args.save_model:
                path = checkpoint_path(self.args, self.logger, epoch)
                self.agent.save_model(path)
                self.logger.print(f'saved checkpoint to {path}')
        return True

    def train(self, stop):
        """Run the remaining cycles; returns the exit status."""
        self.write_status('running')
        stop.watch(self.learner, self.tester)
        while self.cycles_done < self.total_cycles:
            if not self.learner.cycle():
                break
            try:
                if not self.end_cycle(stop):
                    self.write_status('diverged')
                    return EXIT_DIVERGED
            except TestsAborted:
                self.write_status('interrupted')
                kept = self.last_checkpoint[0] if self.last_checkpoint else 'its start'
                self.logger.print(f'stopped by {signal.Signals(stop.signum).name} during the test episodes at env '
                                  f'step {self.learner.env_steps}, to continue from {kept}; resume with: '
                                  f'{resume_command(self.run_dir)}')
                return SIGNAL_EXIT[stop.signum]
            if self.learner.stop_requested or self.cycles_done % self.args.save_freq == 0:
                self.checkpoint(final=self.cycles_done == self.total_cycles)
            self.write_status('running')
            if self.learner.stop_requested:
                break
        if self.cycles_done < self.total_cycles:
            self.checkpoint()
            self.write_status('interrupted')
            name = signal.Signals(stop.signum).name
            self.logger.print(f'stopped by {name} at env step {self.learner.env_steps}; resume with: '
                              f'{resume_command(self.run_dir)}')
            return SIGNAL_EXIT[stop.signum]
        self.checkpoint(final=True)
        self.write_status('finished')
        return 0


class RunLogLines(logging.Handler):
    """The lines `logging` prints (the env id mapping, the backend, MuJoCo warnings) go to the run's
    text log as well: kept until the run's Logger opens, then written there as they come."""

    def __init__(self):
        super().__init__()
        self.setFormatter(logging.Formatter('%(message)s'))
        self.lines, self.logger = [], None

    def emit(self, record):
        line = self.format(record)
        if self.logger is None:
            self.lines.append(line)
        else:
            self.logger.write_text(line)

    def attach(self, logger):
        for line in self.lines:
            logger.write_text(line)
        self.lines, self.logger = [], logger

    def detach(self):
        self.logger = None  # its text log closes


def restore_checkpoint(args, agent, new_buffer):
    """(folder, state, buffer) of the newest readable checkpoint of the resumed run, the agent and
    a buffer from `new_buffer()` restored from it; (None, None, buffer) when it has none. A damaged
    checkpoint (a crash or a full disk while it was written) is skipped with a line saying so."""
    for stale in glob.glob(os.path.join(glob.escape(args.resume), '.tmp-ckpt-*')):
        shutil.rmtree(stale, ignore_errors=True)  # a checkpoint write that was killed
    checkpoints, buffer, damaged = run_checkpoints(args.resume), new_buffer(), []
    for path in reversed(checkpoints):
        try:
            state = load_run_state(path)
            agent.load_model(agent_path(path, args.backend))
            if state['buffer'] is not None:
                load_run_buffer(buffer, path, state['buffer'])
        except CheckpointError as error:  # the files' contents (the disk's errors propagate)
            logging.getLogger(__name__).warning('skipping a damaged checkpoint: %s', error)
            damaged.append(path)
        else:
            for skipped in damaged:  # kept for a look, out of the way of --keep_checkpoints
                os.replace(skipped, unused_path(os.path.join(args.resume, 'damaged-' + os.path.basename(skipped))))
            return path, state, buffer
        buffer = None  # partly filled (and no longer held by the error's traceback): free it first
        buffer = new_buffer()
    if checkpoints:
        raise CheckpointError(f'no readable checkpoint in {args.resume} (all {len(checkpoints)} damaged, see '
                              f'above); start a new run, or move its step* folders away to start this one over')
    return None, None, buffer


def unused_path(path):
    """`path`, or `path-2`, `path-3`, ... if it exists (a checkpoint damaged twice under one name)."""
    candidate, number = path, 1
    while os.path.exists(candidate):
        number += 1
        candidate = f'{path}-{number}'
    return candidate


def run(args, stop=None):
    """Train (or resume, `args.resume`) the run `args` describes; returns (exit status, tester)."""
    stop = stop or StopSignals()
    log_lines = RunLogLines()
    logging.getLogger().addHandler(log_lines)
    try:
        return train_run(args, stop, log_lines)
    finally:
        logging.getLogger().removeHandler(log_lines)


def refuse_taken_name(logdir, name):
    """A new run given `--run_name name` must not take over the files of a run of that name."""
    _, results, _, run_dir = run_paths(logdir, name)
    if os.path.exists(os.path.join(run_dir, CONFIG)):
        raise UsageError(f'--run_name {name}: that run exists in {logdir}; continue it with '
                         f'--resume {name}, or choose another --run_name')
    if os.path.exists(results):  # a start that failed early wrote no row; this run has results
        raise UsageError(f'--run_name {name}: a run of that name left its results in {logdir} ({results}) '
                         f'without its run folder {run_dir}, so it cannot be resumed and would be '
                         f'overwritten; choose another --run_name, or move that run\'s files away')


def train_run(args, stop, log_lines):
    flags = {key: value for key, value in vars(args).items() if key not in NOT_FLAGS}
    env, test_env = make_env(args), make_env(args)
    describe_env(args, env)
    check_run(args)
    name = os.path.basename(args.resume) if args.resume is not None else args.run_name
    named_dir = os.path.join(args.logdir, 'models', name) if name else None  # a resumed or --run_name run's folder
    if args.resume is None and name:  # checked before the agent is built, so the error is the only line
        refuse_taken_name(args.logdir, name)
    args.backend = select_backend(args)
    set_global_seeds(args.seed, args.backend)
    agent = create_agent(args)
    if args.load_model and args.resume is None:
        agent.load_model(args.load_model)

    def new_buffer():
        buffer = create_buffer(args)
        if args.buffer_on_device:
            buffer.keep_on_device(agent.device)
        return buffer
    if stop.signum is not None:  # Ctrl-C while the env and agent were built: leave no run behind
        sys.stderr.write(f'{signal.Signals(stop.signum).name} before the run started: nothing was written\n')
        return SIGNAL_EXIT[stop.signum], None
    with contextlib.ExitStack() as held:
        checkpoint = state = logger_state = None
        if name:  # a given name is locked first and kept (a sweep watches its cells by name)
            held.enter_context(hold_run(named_dir))
            if args.resume is None:  # again under the lock: a run of that name may have started since
                refuse_taken_name(args.logdir, name)
        if args.resume is not None:  # everything is read and checked before a file of the run changes
            checkpoint, state, buffer = restore_checkpoint(args, agent, new_buffer)
            # killed before its first checkpoint: start over under the same name
            logger_state = state['logger'] if state else {'rows': 0, 'records': {}, 'step': -1, 'timer': None}
        else:
            buffer = new_buffer()
        logger = held.enter_context(Logger(args, name=name, resume=logger_state, exact_name=bool(name)))
        log_lines.attach(logger)
        held.callback(log_lines.detach)
        if not name:  # a new name, claimed by the Logger
            held.enter_context(hold_run(logger.run_dir))
        if args.resume is None:
            write_json(os.path.join(logger.run_dir, CONFIG),
                       dict(flags, run_name=logger.name, use_pytorch=args.backend == 'torch'))
            write_status(args, logger.run_dir, 'running')
        logger.print(f'env: {args.env} ({args.env_category})  alg: {args.alg}'
                     + (f' over {args.basis_alg}' if args.alg in ('rrd', 'ircr') else ''))
        register_columns(logger, agent, args)
        learner, tester = Learner(args, env, agent, buffer, logger), Tester(args, test_env, agent, logger)
        training = Training(args, agent, buffer, logger, learner, tester)
        if checkpoint is not None:
            training.restore(checkpoint, state)
        try:
            status = training.train(stop)
        except BaseException:
            training.write_status('failed')
            raise
    return status, tester


def main(argv=None):
    logging.basicConfig(level=logging.INFO, format='%(message)s')
    argv = sys.argv[1:] if argv is None else list(argv)
    with StopSignals() as stop:
        try:
            args = parse_args(argv)
            if args.resume is not None:
                status = read_status(args.resume)
                if status.get('status') == 'finished':
                    print(f'run {os.path.basename(args.resume)} is finished ({status["env_steps"]} env steps); '
                          f'nothing to resume')
                    return None
            status, tester = run(args, stop)
        except RunLocked as error:
            sys.stderr.write(f'error: {error}; let it finish, or stop it before resuming it\n')
            sys.exit(RUN_BUSY_EXIT)
        except (UsageError, CheckpointError, BackendError, TrackingError) as error:  # found after parsing
            sys.stderr.write(f'error: {error}\n')
            sys.exit(EXIT_BAD_INPUT)
        except MemoryError as error:
            sys.exit(f'error: {error}')
    if status:
        sys.exit(status)
    return tester


if __name__ == '__main__':
    main()
