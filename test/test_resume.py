"""Runs that never lose data (project issue 8): distinct outputs per run, checkpoints, `--resume`
after SIGKILL at any point, clean stops on SIGINT/SIGTERM, stops on a non-finite loss.

Killed runs are subprocesses; the reference and resumed runs run in this process (same machine,
one thread), and on the torch backend a resumed run must reproduce the uninterrupted one exactly.
"""
import csv
import glob
import importlib.util
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import time
from types import SimpleNamespace

import numpy as np
import pytest

import train
from algorithm.checkpoint import KILL_IN_CHECKPOINT, run_checkpoints
from utils.os_utils import run_holder

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Episodes of 70 steps cross cycle boundaries (cycles are 4 x 50 steps), so resuming replays a
# running episode; RRD-SAC with observation normalisation covers every kind of agent state.
TINY = ['--env=Pendulum-v1', '--alg=rrd', '--basis_alg=sac', '--rrd_batch_size=32', '--rrd_sample_size=8',
        '--obs_normalization=True', '--epochs=1', '--cycles=3', '--iterations=4', '--timesteps=50',
        '--train_batches=5', '--batch_size=32', '--warmup=100', '--buffer_size=2000', '--test_rollouts=1',
        '--test_timesteps=70', '--cuda=False']
TORCH, TF = ['--use_pytorch=True'], ['--use_pytorch=False']
needs_tf = pytest.mark.skipif(importlib.util.find_spec('tensorflow') is None, reason='TensorFlow is not installed')


@pytest.fixture(autouse=True)
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv('USE_PYTORCH', raising=False)


def start(logdir, *flags, env=None):
    """A training subprocess, its console piped line by line."""
    return subprocess.Popen([sys.executable, os.path.join(ROOT, 'train.py'), *TINY, f'--logdir={logdir}', *flags],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=dict(os.environ, **(env or {})))


def wait_for(proc, predicate):
    """Read the console until a line satisfies `predicate`; returns the lines read."""
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if predicate(line):
            return lines
    raise AssertionError('the run ended before the awaited line:\n' + ''.join(lines))


def is_row(cycle):
    return lambda line: line.split()[:2] == ['0', str(cycle)]


def run_dir(logdir):
    (path,) = glob.glob(os.path.join(logdir, 'models', '*'))
    return path


def table(logdir):
    """The CSV rows without the time/* columns, as {column: text}."""
    (path,) = glob.glob(os.path.join(logdir, 'csv', '*.csv'))
    with open(path, newline='') as file:
        return [{key: value for key, value in row.items() if not key.startswith('time/')}
                for row in csv.DictReader(file)]


def npz(logdir):
    (path,) = glob.glob(os.path.join(logdir, 'rews', '**', '*.npz'), recursive=True)
    with np.load(path) as data:
        return {key: data[key] for key in data.files}


def status(logdir):
    with open(os.path.join(run_dir(logdir), 'status.json')) as file:
        return json.load(file)


def resume(logdir):
    train.main(['--resume', run_dir(logdir)])


@pytest.fixture(scope='module')
def reference(tmp_path_factory):
    """The uninterrupted torch run."""
    logdir = str(tmp_path_factory.mktemp('reference'))
    train.main([*TINY, *TORCH, f'--logdir={logdir}'])
    return SimpleNamespace(table=table(logdir), npz=npz(logdir), logdir=logdir)


def assert_same_run(logdir, reference):
    assert table(logdir) == reference.table
    got = npz(logdir)
    assert sorted(got) == ['info', 'rewards', 'std', 'steps']
    for key, value in reference.npz.items():
        np.testing.assert_array_equal(got[key], value)
    assert status(logdir)['status'] == 'finished'


def test_reference_outputs(reference):
    steps = [int(row['Steps']) for row in reference.table]
    assert steps == [200, 400, 600]
    assert reference.npz['steps'].tolist() == steps and reference.npz['info'].shape == (3, 2)
    assert reference.npz['info'].dtype == np.float64
    np.testing.assert_array_equal(reference.npz['info'], np.stack([steps, reference.npz['rewards']], 1))
    config = json.load(open(os.path.join(run_dir(reference.logdir), 'config.json')))
    assert config['run_name'] == os.path.basename(run_dir(reference.logdir)) and config['use_pytorch'] is True
    assert '-rrd-sac-torch-seed0-' in config['run_name']
    state = status(reference.logdir)
    assert state['env_steps'] == state['total_env_steps'] == 600 and (state['epoch'], state['cycle']) == (0, 2)
    assert state['resume'].endswith(f'--resume {run_dir(reference.logdir)}')
    assert len(run_checkpoints(run_dir(reference.logdir))) == 2  # --keep_checkpoints 2
    for path in glob.glob(os.path.join(reference.logdir, '**'), recursive=True):
        if os.path.isfile(path):
            assert stat.S_IMODE(os.stat(path).st_mode) == 0o644, path


@pytest.mark.parametrize('kill', ['warmup', 'mid-cycle', 'checkpoint 2', 'checkpoint 3'])
def test_torch_resume_after_sigkill_is_exact(tmp_path, reference, kill):
    """SIGKILL before the first checkpoint (the run starts over under its name), inside a cycle
    (resumes from the cycle-end checkpoint before), and inside the 2nd / 3rd checkpoint write
    (the one before it is kept): the resumed run ends with the uninterrupted run's rows and npz."""
    logdir = str(tmp_path / 'log')
    if kill.startswith('checkpoint'):
        proc = start(logdir, *TORCH, env={KILL_IN_CHECKPOINT: kill.split()[1]})
        proc.communicate()
        assert proc.returncode == -signal.SIGKILL
        assert glob.glob(os.path.join(run_dir(logdir), '.tmp-ckpt-*'))  # the half-written one
        assert len(run_checkpoints(run_dir(logdir))) == int(kill.split()[1]) - 1
    else:
        proc = start(logdir, *TORCH)
        wait_for(proc, (lambda line: line.startswith('env: ')) if kill == 'warmup' else is_row(0))
        while kill == 'mid-cycle' and not run_checkpoints(run_dir(logdir)):
            time.sleep(0.005)  # past the first checkpoint, into the second cycle (two still to run)
        proc.kill()
        proc.communicate()
    assert status(logdir)['status'] == 'running'
    resume(logdir)
    assert_same_run(logdir, reference)
    assert not glob.glob(os.path.join(run_dir(logdir), '.tmp-ckpt-*'))


def test_sigint_stops_cleanly_and_resumes_exactly(tmp_path, reference):
    """A real Ctrl-C right after the first row (two cycles are still to run, so it lands however
    fast the machine is): a checkpoint is written, one line gives the resume command, exit
    status 130, no traceback."""
    signum = signal.SIGINT
    logdir = str(tmp_path / 'log')
    proc = start(logdir, *TORCH)
    wait_for(proc, is_row(0))
    proc.send_signal(signum)
    output, _ = proc.communicate()
    assert proc.returncode == 130, output
    assert 'Traceback' not in output
    command = status(logdir)['resume']
    (line,) = [line for line in output.splitlines() if 'resume with' in line]
    assert line.endswith(command) and signal.Signals(signum).name in line
    assert status(logdir)['status'] == 'interrupted'
    resume(logdir)
    assert_same_run(logdir, reference)


def test_sigint_mid_cycle_resumes_exactly(tmp_path, reference, monkeypatch):
    """SIGINT during an update in the middle of the second cycle (sent by the run itself, so it
    lands there on any machine): the update finishes, a mid-cycle checkpoint is written, and the
    resumed run continues from inside the cycle to exactly the uninterrupted run."""
    from learner import Learner
    train_step = Learner.train_step

    def interrupt_at_update_17(self):
        train_step(self)
        if self.updates == 17:
            os.kill(os.getpid(), signal.SIGINT)
    monkeypatch.setattr(Learner, 'train_step', interrupt_at_update_17)
    logdir = str(tmp_path / 'log')
    with pytest.raises(SystemExit) as exit_info:
        train.main([*TINY, *TORCH, f'--logdir={logdir}'])
    assert exit_info.value.code == 130 and status(logdir)['status'] == 'interrupted'
    saved = os.path.basename(run_checkpoints(run_dir(logdir))[-1])
    steps = int(saved.split('-')[0][len('step'):])
    assert saved.endswith('-update17') and 200 < steps < 400, saved  # inside the second cycle
    monkeypatch.undo()
    resume(logdir)
    assert_same_run(logdir, reference)


def test_sigint_before_the_run_starts_leaves_nothing(tmp_path, monkeypatch, capsys):
    """Ctrl-C while the env and agent are built (seconds: imports, TF's graph): the run stops
    without writing a file. It used to start anyway and stop at env step 1 with a checkpoint,
    leaving a run a later bare --resume could pick."""
    create_agent = train.create_agent

    def interrupted_build(args):
        agent = create_agent(args)
        os.kill(os.getpid(), signal.SIGINT)
        return agent
    monkeypatch.setattr(train, 'create_agent', interrupted_build)
    logdir = tmp_path / 'log'
    with pytest.raises(SystemExit) as exit_info:
        train.main([*TINY, *TORCH, f'--logdir={logdir}'])
    assert exit_info.value.code == 130 and not logdir.exists()
    assert 'SIGINT before the run started: nothing was written' in capsys.readouterr().err


def test_resume_rules(tmp_path, reference, capsys):
    logdir = reference.logdir
    with pytest.raises(SystemExit) as exit_info:  # flags that differ from the saved ones
        train.main(['--resume', os.path.basename(run_dir(logdir)), f'--logdir={logdir}', '--seed=5', '--cycles=3'])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "--seed 5 (the run has 0)" in err and '--cycles' not in err and len(err.splitlines()) == 1
    assert train.main(['--resume', f'--logdir={logdir}', '--env=Pendulum-v1', '--seed=0']) is None
    assert 'is finished (600 env steps); nothing to resume' in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_info:
        train.main(['--resume', f'--logdir={logdir}', '--seed=7'])
    assert exit_info.value.code == 2 and 'no run in' in capsys.readouterr().err


@needs_tf
def test_tf_resume_records_every_point_once(tmp_path, reference, monkeypatch):
    """TF's graph-level random streams restart on resume (see train.py), so the curve differs
    after it; the weights, counters, evaluation points and the run's files continue exactly.
    SIGTERM arrives (from the run itself) during the second cycle's test episodes."""
    from learner import Tester
    cycle_summary, tested = Tester.cycle_summary, []

    def terminate_in_second_test(self, env_steps):
        tested.append(env_steps)
        if len(tested) == 2:
            os.kill(os.getpid(), signal.SIGTERM)
        cycle_summary(self, env_steps)
    monkeypatch.setattr(Tester, 'cycle_summary', terminate_in_second_test)
    logdir = str(tmp_path / 'log')
    with pytest.raises(SystemExit) as exit_info:
        train.main([*TINY, *TF, f'--logdir={logdir}'])
    assert exit_info.value.code == 143 and status(logdir)['status'] == 'interrupted'
    first = table(logdir)
    (saved,) = run_checkpoints(run_dir(logdir))[-1:]
    assert os.path.basename(saved) == 'step400-update30' and os.path.isdir(os.path.join(saved, 'agent'))
    monkeypatch.undo()

    loaded = {}
    from algorithm.basis_alg.base import BaseAgent
    load_model = BaseAgent.load_model

    def keep_weights(self, path):
        load_model(self, path)
        variables = self.graph.get_collection('variables')
        loaded.update(zip([var.op.name for var in variables], self.sess.run(variables)))
    monkeypatch.setattr(BaseAgent, 'load_model', keep_weights)
    resume(logdir)
    rows = table(logdir)
    assert [row['Steps'] for row in rows] == [row['Steps'] for row in reference.table]
    assert rows[:2] == first  # rows up to the checkpoint are kept, the rest redone once
    assert npz(logdir)['steps'].tolist() == [200, 400, 600]
    assert status(logdir)['status'] == 'finished'

    import tensorflow as tf
    reader = tf.train.load_checkpoint(os.path.join(saved, 'agent', 'model'))
    assert len(loaded) > 50 and all(np.array_equal(reader.get_tensor(name), value) for name, value in loaded.items())


def test_two_seeds_two_backends_keep_their_files(tmp_path):
    logdir = str(tmp_path / 'log')
    backends = [TORCH] + ([TF] if importlib.util.find_spec('tensorflow') else [])
    flags = ['--epochs=1', '--cycles=1', '--iterations=1', '--warmup=50', '--tag=exp']
    for backend in backends:
        for seed in (0, 1):
            train.main([*TINY, *backend, *flags, f'--seed={seed}', f'--logdir={logdir}'])
    files = sorted(glob.glob(os.path.join(logdir, 'rews', 'exp', '*', 'Pendulum-v1.npz')))
    assert len(files) == 2 * len(backends)
    names = [os.path.basename(os.path.dirname(path)) for path in files]
    assert sorted(name.split('-seed')[0] for name in names) == sorted(
        f'exp-Pendulum-v1-rrd-sac-{backend}' for backend in ('torch', 'tf')[:len(backends)] for _ in (0, 1))


@pytest.mark.parametrize('flag', ['--tag=../../x', '--tag=a/b', '--tag=..', '--run_name=../x', '--run_name=a/b'])
def test_names_that_are_paths_are_rejected_before_any_file(tmp_path, flag):
    result = subprocess.run([sys.executable, os.path.join(ROOT, 'train.py'), *TINY, *TORCH, flag,
                             f'--logdir={tmp_path / "log"}'], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 2
    assert ('not a folder name' if flag.startswith('--tag') else 'not a plain name') in result.stderr
    assert 'Traceback' not in result.stderr and os.listdir(tmp_path) == []


def test_nonfinite_loss_stops_keeping_the_last_good_checkpoint(tmp_path, monkeypatch, capsys):
    from algorithm.basis_alg import sac_torch
    train_q = sac_torch.SAC.q_losses
    calls = []

    def diverging(self, batch):  # finite for the first cycle's 10 updates (warm after 2 episodes)
        updates, info = train_q(self, batch)
        calls.append(1)
        return updates, (dict(info, Q_loss=info['Q_loss'] * float('nan')) if len(calls) > 10 else info)
    monkeypatch.setattr(sac_torch.SAC, 'q_losses', diverging)
    logdir = str(tmp_path / 'log')
    flags = [flag for flag in TINY if not flag.startswith(('--alg', '--basis_alg', '--rrd'))]
    with pytest.raises(SystemExit) as exit_info:  # eager: a replay would not follow the Python counter
        train.main([*flags, *TORCH, '--alg=sac', '--traced_update=False', f'--logdir={logdir}'])
    assert exit_info.value.code == 3
    err = capsys.readouterr().err
    assert 'error: losses/Q_loss is nan at env step 400' in err and 'Traceback' not in err
    assert status(logdir)['status'] == 'diverged'
    assert [os.path.basename(path) for path in run_checkpoints(run_dir(logdir))] == ['step200-update10']


def test_buffer_checkpoint_round_trip(tmp_path):
    """A saved and reloaded buffer (after FIFO evictions wrapped its ring) samples what the
    original samples; IRCR's heap and return range come back too."""
    from algorithm.replay_buffer import create_buffer
    args = SimpleNamespace(alg='ircr', env_category='classic', obs_dims=[3], acts_dims=[1], discrete=False,
                           batch_size=16, buffer_size=300)
    buffer, rng = create_buffer(args, np.random.RandomState(0)), np.random.RandomState(1)
    for length in rng.randint(20, 90, size=12):
        buffer.store_episode(rng.randn(length + 1, 3), rng.randn(length, 1), rng.randn(length), np.zeros(length))
    state = buffer.save(str(tmp_path))
    copy = create_buffer(args, np.random.RandomState(0))
    copy.load(str(tmp_path), state)
    assert (copy.step_counter, copy.ep_counter, copy.steps_held) == (buffer.step_counter, buffer.ep_counter,
                                                                     buffer.steps_held)
    for _ in range(3):
        a, b = buffer.sample_batch(), copy.sample_batch()
        for key in a:
            np.testing.assert_array_equal(a[key], b[key])
        episode = (rng.randn(31, 3), rng.randn(30, 1), rng.randn(30), np.zeros(30))
        buffer.store_episode(*episode)
        copy.store_episode(*episode)


def interrupted_run(logdir, monkeypatch, at_update=17):
    """A torch run stopped by SIGINT at `at_update` (inside the second cycle): checkpoints
    step200-update10 (end of cycle 1) and the mid-cycle one."""
    from learner import Learner
    train_step = Learner.train_step

    def interrupt(self):
        train_step(self)
        if self.updates == at_update:
            os.kill(os.getpid(), signal.SIGINT)
    with monkeypatch.context() as patch:
        patch.setattr(Learner, 'train_step', interrupt)
        with pytest.raises(SystemExit):
            train.main([*TINY, *TORCH, f'--logdir={logdir}'])
    return run_checkpoints(run_dir(logdir))


def run_files(logdir):
    """Every file of the run with its size and modification time."""
    return {path: (os.path.getsize(path), os.path.getmtime(path))
            for path in glob.glob(os.path.join(logdir, '**'), recursive=True) if os.path.isfile(path)}


@pytest.mark.parametrize('damage', ['agent', 'buffer', 'state'])
def test_a_damaged_newest_checkpoint_is_skipped(tmp_path, reference, monkeypatch, capsys, damage):
    """A newest checkpoint damaged after it was written (a crash, a full disk): the resume says so
    and continues from the one before, still exactly the uninterrupted run."""
    logdir = str(tmp_path / 'log')
    older, newest = interrupted_run(logdir, monkeypatch)
    target = {'agent': 'agent.pt', 'buffer': os.path.join('buffer', 'episodes.npz'), 'state': 'state.pkl'}[damage]
    with open(os.path.join(newest, target), 'wb') as file:
        file.write(b'\0\1')
    resume(logdir)
    assert_same_run(logdir, reference)
    (text,) = glob.glob(os.path.join(logdir, 'text', '*.log'))
    log = open(text).read()  # what the console showed, logged lines included
    assert f'skipping a damaged checkpoint: {newest}' in log and 'allow_pickle' not in log
    assert f'resumed from {older}' in log
    # set aside, so the checkpoints kept from now on are readable ones
    kept = os.path.join(run_dir(logdir), 'damaged-' + os.path.basename(newest))
    assert os.path.isfile(os.path.join(kept, target)) and newest not in run_checkpoints(run_dir(logdir))


def test_no_readable_checkpoint_is_one_error_before_any_write(tmp_path, monkeypatch, capsys):
    logdir = str(tmp_path / 'log')
    for path in interrupted_run(logdir, monkeypatch):
        with open(os.path.join(path, 'agent.pt'), 'wb') as file:
            file.write(b'')
    before = run_files(logdir)
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        resume(logdir)
    assert exit_info.value.code == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith(f'error: no readable checkpoint in {run_dir(logdir)} (all 2 damaged')
    assert 'move its step* folders away' in last
    assert run_files(logdir) == before  # the log, CSV, TensorBoard run and status are untouched


def test_damaged_config_is_named(tmp_path, monkeypatch, capsys, caplog):
    """A damaged config.json stops `--resume RUN` with one line naming it; a bare --resume skips
    that run and finds the others."""
    logdir = str(tmp_path / 'log')
    interrupted_run(logdir, monkeypatch)
    damaged = os.path.join(logdir, 'models', 'other')
    os.makedirs(damaged)
    with open(os.path.join(damaged, 'config.json'), 'w') as file:
        file.write('{bad')
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        train.main(['--resume', damaged])
    assert exit_info.value.code == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f'error: {damaged}/config.json is not readable JSON (JSONDecodeError') and 'start a new run' in line
    train.main(['--resume', f'--logdir={logdir}', '--seed=0'])
    assert f'skipping a run: {damaged}/config.json is not readable JSON' in caplog.text
    with open(os.path.join(glob.glob(os.path.join(logdir, 'models', '*-seed0-*'))[0], 'status.json')) as file:
        assert json.load(file)['status'] == 'finished'


def test_bare_resume_takes_the_runs_env(tmp_path, reference, monkeypatch, capsys):
    """`--resume --seed 0` without --env: the run's env decides the env category and the flags
    (the parser's default env, Ant-v2, is another category)."""
    logdir = str(tmp_path / 'log')
    interrupted_run(logdir, monkeypatch)
    capsys.readouterr()
    train.main(['--resume', f'--logdir={logdir}', '--seed=0'])
    assert 'env: Pendulum-v1 (classic)' in capsys.readouterr().out
    assert_same_run(logdir, reference)


def test_a_running_run_cannot_be_resumed_twice(tmp_path, capsys):
    logdir = str(tmp_path / 'log')
    proc = start(logdir, *TORCH, '--cycles=1000')  # still running however slow the second process is
    try:
        wait_for(proc, is_row(0))
        assert run_holder(run_dir(logdir)) == str(proc.pid)
        before = run_files(logdir)
        with pytest.raises(SystemExit) as exit_info:
            resume(logdir)
        assert exit_info.value.code == 75  # try again later (tools/sweep.py leaves the run to its process)
        (line,) = capsys.readouterr().err.strip().splitlines()
        assert line == (f'error: run {os.path.basename(run_dir(logdir))} is running in another process '
                        f'(pid {proc.pid}); let it finish, or stop it before resuming it')
        assert all(path in run_files(logdir) for path in before)
    finally:
        proc.kill()
        proc.communicate()
    assert run_holder(run_dir(logdir)) is None  # the lock went with the process


def run_with_two_sigints_in_second_test(logdir, monkeypatch):
    """A torch run that gets two SIGINTs at once in its second cycle's (only) test episode; it
    stops (exit status 130, status interrupted)."""
    from learner import Tester
    rollout, tested = Tester.rollout, []

    def signalled_twice_in_second_test(self):
        tested.append(1)
        if len(tested) == 2:
            os.kill(os.getpid(), signal.SIGINT)
            os.kill(os.getpid(), signal.SIGINT)
        return rollout(self)
    with monkeypatch.context() as patch:
        patch.setattr(Tester, 'rollout', signalled_twice_in_second_test)
        with pytest.raises(SystemExit) as exit_info:
            train.main([*TINY, *TORCH, f'--logdir={logdir}'])
    assert exit_info.value.code == 130 and status(logdir)['status'] == 'interrupted'


def test_second_sigint_during_tests_stops_at_once(tmp_path, reference, monkeypatch, capsys):
    """Ctrl-C during the test episodes says the run stops after them; a second one stops at once,
    without a checkpoint of the cycle, and the resume redoes it from the last checkpoint."""
    monkeypatch.setattr(train, 'REPEAT_AFTER', 0.0)  # the second press comes later than the first
    logdir = str(tmp_path / 'log')
    run_with_two_sigints_in_second_test(logdir, monkeypatch)
    out, err = capsys.readouterr()
    assert 'SIGINT: stopping after the test episodes of this cycle; SIGINT again stops now' in err
    (checkpoint,) = [path for path in run_checkpoints(run_dir(logdir))][-1:]
    assert os.path.basename(checkpoint) == 'step200-update10'
    (line,) = [line for line in out.splitlines() if 'during the test episodes' in line]
    assert f'to continue from {checkpoint}; resume with: ' in line and line.endswith(status(logdir)['resume'])
    monkeypatch.undo()
    resume(logdir)
    assert_same_run(logdir, reference)


def test_text_log_holds_what_the_console_showed(tmp_path):
    """Lines printed through `logging` before the run's files exist (the backend, an env id's
    mapping) reach its text log too, after its header."""
    logdir = str(tmp_path / 'log')
    flags = [flag for flag in TINY if not flag.startswith(('--env', '--alg', '--basis_alg', '--rrd', '--cycles'))]
    result = subprocess.run([sys.executable, os.path.join(ROOT, 'train.py'), *flags, *TORCH, '--env=Swimmer-v2',
                             '--alg=sac', '--cycles=1', f'--logdir={logdir}'], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    (text,) = glob.glob(os.path.join(logdir, 'text', '*.log'))
    lines = open(text).read().splitlines()
    logged = ['Swimmer-v2 needs mujoco-py; running the maintained Swimmer-v5 instead', 'backend: PyTorch']
    assert result.stderr.splitlines() == logged
    assert lines[0].startswith('# ') and lines[1:3] == logged and lines[3].startswith('env: Swimmer-v2')


def test_bare_resume_reads_flags_as_each_runs_flags(tmp_path, capsys):
    """Flags only some configurations have (DQN's --double) select among the runs of a logdir:
    each run's env and algorithm decide which flags exist, not the parser's default env."""
    logdir = str(tmp_path / 'log')
    flags = ['--env=CartPole-v1', '--alg=dqn', '--epochs=1', '--cycles=1', '--iterations=2', '--timesteps=50',
             '--warmup=50', '--batch_size=16', '--buffer_size=1000', '--test_rollouts=1', '--test_timesteps=50']
    train.main([*flags, *TORCH, f'--logdir={logdir}'])
    path = os.path.join(run_dir(logdir), 'status.json')
    with open(path) as file:
        saved = json.load(file)
    with open(path, 'w') as file:  # as if killed right after its last checkpoint
        json.dump(dict(saved, status='running'), file)
    with pytest.raises(SystemExit) as exit_info:
        train.main(['--resume', f'--logdir={logdir}', '--double=True'])
    assert exit_info.value.code == 2 and 'no run in' in capsys.readouterr().err
    train.main(['--resume', f'--logdir={logdir}', '--double=False'])
    assert 'env: CartPole-v1 (classic)' in capsys.readouterr().out and status(logdir)['status'] == 'finished'


def test_a_forwarded_copy_of_the_signal_is_the_same_stop(tmp_path, monkeypatch):
    """The same Ctrl-C arriving twice at once (the terminal's, and tools/runner.py or a scheduler
    forwarding it) during the test episodes: one stop, after them, with the cycle's checkpoint."""
    logdir = str(tmp_path / 'log')
    run_with_two_sigints_in_second_test(logdir, monkeypatch)
    assert os.path.basename(run_checkpoints(run_dir(logdir))[-1]) == 'step400-update30'


def test_a_given_run_name_is_kept_over_the_leftovers_of_a_failed_start(tmp_path):
    """Files of a start that died before its run existed (no config.json: an empty text log, the
    lock file) do not rename a --run_name run (a sweep watches its cells by name) nor block it."""
    logdir = tmp_path / 'log'
    (logdir / 'text').mkdir(parents=True)
    (logdir / 'text' / 'cell-seed0.log').write_text('')
    (logdir / 'models' / 'cell-seed0').mkdir(parents=True)
    (logdir / 'models' / 'cell-seed0' / '.lock').write_text('')
    flags = [flag for flag in TINY if not flag.startswith('--cycles')]
    train.main([*flags, *TORCH, '--cycles=1', '--run_name=cell-seed0', f'--logdir={logdir}'])
    assert os.listdir(logdir / 'models') == ['cell-seed0'] and status(str(logdir))['status'] == 'finished'
    assert os.listdir(logdir / 'text') == ['cell-seed0.log']


def test_a_given_run_name_never_overwrites_a_runs_results(tmp_path, capsys):
    """A finished run whose run folder was deleted (to free checkpoint space) still has its results;
    a new run given its name is refused with one line rather than overwriting its CSV and npz."""
    logdir = tmp_path / 'log'
    flags = [*[flag for flag in TINY if not flag.startswith('--cycles')], *TORCH, '--cycles=1', f'--logdir={logdir}']
    train.main([*flags, '--run_name=done'])
    shutil.rmtree(logdir / 'models' / 'done')
    before = {path: path.read_bytes() for path in logdir.rglob('*') if path.is_file()}
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        train.main([*flags, '--run_name=done', '--seed=1'])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and err.count('\n') == 1
    assert 'a run of that name left its results' in err and 'choose another --run_name' in err
    assert {path: path.read_bytes() for path in logdir.rglob('*') if path.is_file()} == before


def test_a_run_name_taken_while_the_agent_is_built_is_refused(tmp_path, monkeypatch, capsys):
    """Two starts of one --run_name a moment apart: the second checks the name, builds its agent,
    and meanwhile the first has created the run (and may even have finished and released its
    lock). The name is checked again under the lock, so the second never overwrites the first."""
    logdir = tmp_path / 'log'
    create_agent = train.create_agent

    def build_while_another_start_creates_the_run(args):
        (logdir / 'models' / 'same').mkdir(parents=True)
        (logdir / 'models' / 'same' / 'config.json').write_text('{"seed": 1}')
        return create_agent(args)
    monkeypatch.setattr(train, 'create_agent', build_while_another_start_creates_the_run)
    with pytest.raises(SystemExit) as exit_info:
        train.main([*TINY, *TORCH, '--run_name=same', '--seed=2', f'--logdir={logdir}'])
    assert exit_info.value.code == 2 and '--run_name same: that run exists' in capsys.readouterr().err
    assert (logdir / 'models' / 'same' / 'config.json').read_text() == '{"seed": 1}'
    assert not (logdir / 'csv').exists()


def test_resume_help_is_the_help(tmp_path, capsys):
    """`--resume --help` prints the help once and exits 0; it tried every run in the logdir as the
    one to resume, printing the help for each, then failed."""
    logdir = tmp_path / 'log'
    flags = [*[flag for flag in TINY if not flag.startswith('--cycles')], *TORCH, '--cycles=1', f'--logdir={logdir}']
    train.main([*flags, '--run_name=one'])
    train.main([*flags, '--run_name=two'])
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        train.main(['--resume', '--help', f'--logdir={logdir}'])
    assert exit_info.value.code == 0 and capsys.readouterr().out.count('usage:') == 1


def test_a_disk_error_is_no_damage(tmp_path, monkeypatch):
    """An I/O error while reading a checkpoint (a flaky network disk) stops the resume with that
    error: it says nothing about the file, so no checkpoint is passed over or set aside."""
    import errno
    from algorithm import checkpoint
    logdir = str(tmp_path / 'log')
    kept = interrupted_run(logdir, monkeypatch)

    def io_error(file):
        raise OSError(errno.EIO, 'Input/output error')
    monkeypatch.setattr(checkpoint.pickle, 'load', io_error)
    with pytest.raises(OSError, match='Input/output error'):
        resume(logdir)
    assert run_checkpoints(run_dir(logdir)) == kept and not glob.glob(os.path.join(run_dir(logdir), 'damaged-*'))
