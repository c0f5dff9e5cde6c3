"""Tests for utils/os_utils.py: text log, per-cycle CSV/console table, TensorBoard, npz output."""
import csv
import glob
import os
import stat
import time
from types import SimpleNamespace

import numpy as np
import pytest

from utils.os_utils import Logger, Timer, check_name, format_seconds, make_dir, run_name, str2bool


def make_args(tmp_path, **kw):
    defaults = dict(tag='exp', env='Ant-v2', alg='rrd', basis_alg='sac', backend='torch', seed=3,
                    logdir=str(tmp_path / 'log'))
    return SimpleNamespace(**{**defaults, **kw})


def run_cycles(logger, cycles=3):
    """What the learner does: per-update losses, per-cycle values, then `tabular`."""
    logger.add_item('Epoch')
    logger.add_item('Steps')
    logger.add_item('time/steps_per_sec')
    logger.add_item('time/time_left')
    logger.add_item('charts/TestRewards')
    logger.add_item('losses/Q_loss')
    logger.add_item('losses/R_loss')
    rows = []
    for cycle in range(cycles):
        for update in range(4):
            info = {'Q_loss': np.float32(cycle + update), 'Pi_loss': np.array([1.0, 3.0])}
            if cycle != 1:
                info['R_loss'] = 0.5
            logger.add_dict(info, prefix='losses/')
        logger.add_record('Epoch', 0)
        logger.add_record('Steps', (cycle + 1) * 100)
        logger.add_record('charts/TestRewards', 10.0 * cycle)
        logger.add_timing((cycle + 1) * 100, (cycle + 1) / cycles)
        rows.append(logger.tabular((cycle + 1) * 100))
    return rows


def read_csv(path):
    with open(path, newline='') as f:
        return list(csv.reader(f))


def test_str2bool():
    assert [str2bool(s) for s in ('TRUE', 'yes', '1', 'False', 'no', '0')] == [True] * 3 + [False] * 3
    with pytest.raises(Exception, match='true/false'):
        str2bool('2')


def test_make_dir(tmp_path):
    path = str(tmp_path / 'a' / 'b')
    make_dir(path)
    open(os.path.join(path, 'f'), 'w').close()
    make_dir(path)
    assert os.listdir(path) == ['f']
    make_dir(path, clear=True)
    assert os.listdir(path) == []


def test_run_name_and_format_seconds(tmp_path):
    name = run_name(make_args(tmp_path, tag='my tag'), timestamp='20240101-000000')
    assert name == 'my_tag-Ant-v2-rrd-sac-torch-seed3-20240101-000000'
    assert run_name(make_args(tmp_path, tag='', alg='sac', basis_alg=None, backend='tf'),
                    timestamp='20240101-000000') == 'Ant-v2-sac-tf-seed3-20240101-000000'
    assert run_name(make_args(tmp_path, run_name='mine')) == 'mine'
    assert check_name('a.b+c=d-e_1', 'tag') == 'a.b+c=d-e_1'
    for bad in ('..', '.', 'a/b', '../x', 'a b', ''):
        with pytest.raises(ValueError, match='not a plain name'):
            check_name(bad, '--tag')
    assert format_seconds(3725) == '1:02:05' and format_seconds(float('nan')) == '-'


def test_timer(monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr(time, 'time', lambda: clock[0])
    timer = Timer()
    clock[0] += 10  # a warmup cycle, without updates: says nothing about the time left
    assert np.isnan(timer.lap(100, 0.1, trained=False)['time_left'])
    clock[0] += 100  # training cycles take 100 s per tenth of the run
    assert timer.lap(200, 0.2)['time_left'] == pytest.approx(800)
    state = timer.state()
    clock[0] += 5000  # killed, resumed later: the estimate and the elapsed time carry over
    resumed = Timer()
    resumed.restore(state)
    clock[0] += 300
    lap = resumed.lap(300, 0.3)
    assert lap['elapsed'] == pytest.approx(410) and lap['time_left'] == pytest.approx(7 * 200)
    assert lap['steps_per_sec'] == pytest.approx(100 / 300)


def test_logger_outputs(tmp_path, capsys):
    args = make_args(tmp_path)
    with Logger(args) as logger:
        rows = run_cycles(logger)
        logger.print('done')
    # Averages over the cycle; arrays are averaged too; integer records stay ints.
    assert rows[0]['losses/Q_loss'] == 1.5 and rows[2]['losses/Q_loss'] == 3.5
    assert rows[0]['losses/Pi_loss'] == 2.0 and rows[0]['Steps'] == 100
    assert isinstance(rows[0]['Epoch'], int)
    assert 'losses/R_loss' not in rows[1]

    log = args.logdir
    assert logger.name.startswith('exp-Ant-v2-rrd-sac-torch-seed3-')
    text = open(os.path.join(log, 'text', logger.name + '.log')).read()
    out = capsys.readouterr().out
    assert 'TestRewards' in text and 'Q_loss' in text and 'TimeLeft' in text and 'done' in text
    assert text.splitlines()[1:] == out.splitlines()[1:]  # console and text log agree

    table = read_csv(os.path.join(log, 'csv', logger.name + '.csv'))
    assert table[0] == ['Epoch', 'Steps', 'time/steps_per_sec', 'time/time_left',
                        'charts/TestRewards', 'losses/Q_loss', 'losses/R_loss']
    assert len(table) == 4  # header once, one row per cycle
    assert table[1][:2] == ['0', '100'] and float(table[3][4]) == 20.0
    assert table[2][6] == ''  # a key missing from a later row: empty cell
    assert float(table[3][3]) == pytest.approx(0, abs=1)  # no time left after the last cycle

    events = glob.glob(os.path.join(log, 'board', logger.name, 'events.out.tfevents.*'))
    assert events
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    acc = EventAccumulator(os.path.dirname(events[0]))
    acc.Reload()
    tags = acc.Tags()['scalars']
    assert {'losses/Q_loss', 'losses/Pi_loss', 'charts/TestRewards', 'time/time_left'} <= set(tags)
    q = acc.Scalars('losses/Q_loss')
    assert [e.step for e in q] == [100, 200, 300] and [e.value for e in q] == [1.5, 2.5, 3.5]


def test_columns_default_to_first_row_keys(tmp_path):
    with Logger(logdir=str(tmp_path), name='run', tensorboard=False, echo=False) as logger:
        logger.add_record('a', 1.0)
        logger.tabular(0)
        logger.add_record('b', 2.0)  # a new key after the first row: not a column
        logger.add_record('a', 3.0)
        logger.tabular(1)
    assert read_csv(str(tmp_path / 'csv' / 'run.csv')) == [['a'], ['1.0'], ['3.0']]
    assert not os.path.exists(tmp_path / 'board')


def test_device_values_are_read_once_per_cycle(tmp_path, monkeypatch):
    """Losses on an accelerator are summed where they are and read when the cycle closes: reading
    one per update would make the training loop wait for the device at every update. (No GPU in
    the tests: CPU tensors stand in, with `_on_device` answering as it does for CUDA tensors.)"""
    torch = pytest.importorskip('torch')
    from utils import os_utils
    assert os_utils._on_device(SimpleNamespace(device=SimpleNamespace(type='cuda')))
    for host_value in (1.5, np.float32(1.5), np.ones(3), torch.tensor(1.5), '/device:CPU:0'):
        assert not os_utils._on_device(host_value)

    monkeypatch.setattr(os_utils, '_on_device', lambda value: isinstance(value, torch.Tensor))
    with Logger(logdir=str(tmp_path), name='run', tensorboard=False, echo=False) as logger:
        for value in (1.0, 2.0, 4.5):
            logger.add_dict({'Q_loss': torch.tensor(value)}, prefix='losses/')
        total, count = logger._records['losses/Q_loss']
        assert isinstance(total, torch.Tensor) and total.dtype == torch.float64 and count == 3  # not read yet
        row = logger.tabular(0)
    assert row['losses/Q_loss'] == 2.5 and type(row['losses/Q_loss']) is float
    assert read_csv(str(tmp_path / 'csv' / 'run.csv')) == [['losses/Q_loss'], ['2.5']]


def test_same_second_runs_do_not_overwrite(tmp_path):
    first = Logger(logdir=str(tmp_path), name='run', tensorboard=False, echo=False)
    second = Logger(logdir=str(tmp_path), name='run', tensorboard=False, echo=False)
    assert first.name == 'run' and second.name == 'run-1'
    first.close()
    second.close()


def test_a_name_is_claimed_atomically(tmp_path, monkeypatch):
    """Another process creating the same run's text log between the check for a free name and
    its creation (runs started in the same second): this run takes the next name."""
    import utils.os_utils as os_utils
    make_dir, raced = os_utils.make_dir, []

    def another_process_first(path, *args, **kwargs):
        made = make_dir(path, *args, **kwargs)
        if path.endswith('text') and not raced:
            raced.append(open(os.path.join(path, 'run.log'), 'x'))
        return made
    monkeypatch.setattr(os_utils, 'make_dir', another_process_first)
    with Logger(logdir=str(tmp_path), name='run', tensorboard=False, echo=False) as logger:
        assert logger.name == 'run-1'
    assert raced[0].tell() == 0 and os.path.getsize(tmp_path / 'text' / 'run.log') == 0  # the other's, untouched


def test_deterministic_apart_from_timings(tmp_path):
    tables = []
    for run in range(2):
        with Logger(make_args(tmp_path, logdir=str(tmp_path / str(run))), echo=False) as logger:
            run_cycles(logger)
        rows = read_csv(logger.csv_path)
        time_columns = [i for i, key in enumerate(rows[0]) if key.startswith('time/')]
        tables.append([[c for i, c in enumerate(row) if i not in time_columns] for row in rows])
    assert tables[0] == tables[1]


def test_save_npz_atomic(tmp_path):
    args = make_args(tmp_path)
    with Logger(args, tensorboard=False, echo=False) as logger:
        path = logger.save_npz([100, 200], [1.5, 2.5], std=[0.1, 0.2])
        path = logger.save_npz([100, 200, 300], [1.5, 2.5, 4.0], std=[0.1, 0.2, 0.3],
                               episodes=np.ones((3, 10)))
    assert path == os.path.join(args.logdir, 'rews', 'exp', logger.name, 'Ant-v2.npz')
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o644  # like every other file (mkstemp makes 0600)
    data = np.load(path)
    assert sorted(data.files) == ['episodes', 'info', 'rewards', 'std', 'steps']
    assert data['info'].tolist() == [[100, 1.5], [200, 2.5], [300, 4.0]] and data['info'].dtype == np.float64
    assert data['steps'].tolist() == [100, 200, 300] and data['steps'].dtype == np.int64
    assert data['rewards'].tolist() == [1.5, 2.5, 4.0] and data['std'].shape == (3,)
    assert os.listdir(os.path.dirname(path)) == ['Ant-v2.npz']  # no temporary file left


def test_save_npz_failure_leaves_no_tmp(tmp_path, monkeypatch):
    with Logger(logdir=str(tmp_path), name='run', env='Pong', tag='',
                tensorboard=False, echo=False) as logger:
        def fail(*args):
            raise OSError('disk full')
        monkeypatch.setattr(os, 'replace', fail)
        with pytest.raises(OSError):
            logger.save_npz([1], [1.0])
        assert os.listdir(tmp_path / 'rews' / 'run') == []
        monkeypatch.undo()
        assert logger.save_npz([1], [2.0]) == str(tmp_path / 'rews' / 'run' / 'Pong.npz')
    assert os.listdir(tmp_path / 'rews' / 'run') == ['Pong.npz']


def test_resume_continues_the_files(tmp_path):
    """A resumed logger keeps the rows before its state, appends to the text log and CSV, and
    hides the TensorBoard events written after that state."""
    args = make_args(tmp_path)
    with Logger(args, echo=False) as logger:
        run_cycles(logger, cycles=1)
        logger.add_record('losses/Q_loss', 7.0)  # half a cycle done when the state is taken
        state = logger.state(step=100)
        logger.add_record('charts/TestRewards', -1.0)
        logger.tabular(200)  # written after the state: to be redone
    with Logger(args, name=logger.name, resume=state, echo=False) as resumed:
        resumed.add_record('losses/Q_loss', 1.0)
        resumed.add_record('Steps', 200)
        resumed.add_record('charts/TestRewards', 99.0)
        resumed.tabular(200)
    assert resumed.name == logger.name
    table = read_csv(resumed.csv_path)
    assert [row[1] for row in table] == ['Steps', '100', '200'] and len(table[0]) == 7
    assert float(table[2][5]) == 4.0  # (7 + 1) / 2: the half cycle's record was kept
    text = open(resumed.text_path).read()
    assert '(started' in text and '(resumed' in text
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    acc = EventAccumulator(resumed.board_dir)
    acc.Reload()
    assert [(event.step, event.value) for event in acc.Scalars('charts/TestRewards')] == [(100, 0.0), (200, 99.0)]


def test_scalars_are_in_the_file_when_tabular_returns(tmp_path):
    """A run killed (kill -9, OOM) right after a cycle's row keeps that row's TensorBoard scalars:
    its resume hides only the steps after its checkpoint, so a scalar lost here is lost for good.
    tensorboardX's SummaryWriter left some in its background queue (2-3 of 19 here)."""
    import subprocess
    import sys
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    code = (f'import os, sys; sys.path.insert(0, {root!r}); from utils.os_utils import Logger\n'
            f'logger = Logger(logdir={str(tmp_path)!r}, name="run", echo=False)\n'
            'for i in range(19): logger.add_record(f"charts/k{i:02d}", float(i))\n'
            'logger.tabular(100)\n'
            'os._exit(0)')
    subprocess.run([sys.executable, '-c', code], check=True, timeout=60)
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    acc = EventAccumulator(str(tmp_path / 'board' / 'run'))
    acc.Reload()
    assert sorted(acc.Tags()['scalars']) == [f'charts/k{i:02d}' for i in range(19)]
    assert [(event.step, event.value) for event in acc.Scalars('charts/k18')] == [(100, 18.0)]


def test_run_lock(tmp_path, monkeypatch, caplog):
    """hold_run: one holder at a time, named by pid; run_holder probes without taking it. On a
    file system without locks both go on (a line says so) instead of failing."""
    import errno
    import fcntl
    import subprocess
    import sys
    from utils.os_utils import hold_run, run_holder
    run_dir = str(tmp_path / 'run')
    assert run_holder(run_dir) is None
    with hold_run(run_dir):
        assert run_holder(run_dir) == str(os.getpid())
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        code = f'import sys; sys.path.insert(0, {root!r}); from utils.os_utils import hold_run\n' \
               f'with hold_run({run_dir!r}): pass'
        other = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True)
        assert f'RunLocked: run run is running in another process (pid {os.getpid()})' in other.stderr
    assert run_holder(run_dir) is None

    def no_locks(*args):
        raise OSError(errno.ENOLCK, 'No locks available')
    monkeypatch.setattr(fcntl, 'flock', no_locks)
    with hold_run(run_dir):
        assert run_holder(run_dir) is None
    assert 'has no file locks' in caplog.text


def test_a_failed_start_gives_its_name_back(tmp_path, monkeypatch):
    """A Logger that fails after claiming its name (here: TensorBoard on a full disk) leaves no file,
    so the run started again gets the same name (a sweep watches its cells by name)."""
    import errno
    import tensorboardX.event_file_writer

    def full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, 'No space left on device')
    with monkeypatch.context() as patch:
        patch.setattr(tensorboardX.event_file_writer, 'EventsWriter', full_disk)
        with pytest.raises(OSError, match='No space left'):
            Logger(logdir=str(tmp_path), name='cell-seed0', echo=False)
    assert os.listdir(tmp_path) == []
    with Logger(logdir=str(tmp_path), name='cell-seed0', echo=False) as logger:
        assert logger.name == 'cell-seed0'
