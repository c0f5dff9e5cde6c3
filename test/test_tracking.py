"""`train.py --track` (project issue #9, item 5): an offline W&B run inside --logdir holds the run's
flags and every scalar of its table; without wandb, one line before anything is written."""
import csv
import glob
import importlib.util
import json
import os
import struct

import pytest

import train

pytest.importorskip('wandb')
from wandb.proto import wandb_internal_pb2  # noqa: E402

TINY = ['--env=Pendulum-v1', '--alg=rrd', '--basis_alg=sac', '--epochs=1', '--cycles=2', '--iterations=2',
        '--timesteps=25', '--warmup=50', '--batch_size=16', '--test_rollouts=1', '--test_timesteps=25',
        '--buffer_size=500', '--train_batches=2', '--rrd_batch_size=16', '--rrd_sample_size=4',
        '--use_pytorch=True', '--cuda=False']
BLOCK, HEADER = 32768, 7  # the .wandb file: a 7-byte header, then a LevelDB log of 32 KiB blocks


def wandb_records(path):
    """The protobuf records of a .wandb transaction log (chunks: crc32, length, type, payload)."""
    with open(path, 'rb') as f:
        data = f.read()
    assert data[:4] == b':W&B'
    records, pending, pos = [], b'', HEADER
    while pos + HEADER <= len(data):
        if BLOCK - pos % BLOCK < HEADER:  # a block's tail too short for a chunk header is padding
            pos += BLOCK - pos % BLOCK
            continue
        length, kind = struct.unpack('<HB', data[pos + 4:pos + HEADER])
        pending += data[pos + HEADER:pos + HEADER + length]
        pos += HEADER + length
        if kind in (1, 4):  # a full record, or the last chunk of one
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            records.append(record)
            pending = b''
    return records


@pytest.fixture
def offline(tmp_path, monkeypatch):
    """Offline W&B; wandb's own settings and caches in the test's folder, not the user's home."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv('USE_PYTORCH', raising=False)
    monkeypatch.delenv('WANDB_DIR', raising=False)
    monkeypatch.setenv('WANDB_MODE', 'offline')
    monkeypatch.setenv('WANDB_SILENT', 'true')
    monkeypatch.setenv('WANDB_CONSOLE', 'off')
    for key in ('WANDB_CONFIG_DIR', 'WANDB_CACHE_DIR', 'WANDB_DATA_DIR'):
        monkeypatch.setenv(key, str(tmp_path / 'wandb-home'))
    return tmp_path


def test_offline_run_holds_the_config_and_every_scalar(offline):
    logdir = offline / 'log'
    train.main([*TINY, '--track', '--wandb_project=rrd-test', '--tag=tracked', '--logdir', str(logdir)])
    assert sorted(os.listdir(offline)) == ['log', 'wandb-home']  # the run itself wrote only under --logdir
    (run_file,) = glob.glob(str(logdir / 'wandb' / 'offline-run-*' / 'run-*.wandb'))
    records = wandb_records(run_file)

    kinds = [r.WhichOneof('record_type') for r in records]
    (run,) = [r.run for r, kind in zip(records, kinds) if kind == 'run']
    (csv_path,) = glob.glob(str(logdir / 'csv' / '*.csv'))
    assert run.display_name == os.path.basename(csv_path)[:-len('.csv')] and run.project == 'rrd-test'
    (id_file,) = glob.glob(str(logdir / 'wandb' / '*.id'))  # what a resume continues
    assert open(id_file).read().strip() == run.run_id and run.run_id != run.display_name
    updates = [run.config.update] + [r.config.update for r, kind in zip(records, kinds) if kind == 'config']
    config = {item.key: json.loads(item.value_json) for update in updates for item in update}
    assert config['env'] == 'Pendulum-v1' and config['alg'] == 'rrd' and config['track'] is True
    assert config['rrd_sample_size'] == 4 and config['tag'] == 'tracked'

    history = [{item.key or '/'.join(item.nested_key): json.loads(item.value_json) for item in r.history.item}
               for r in records if r.WhichOneof('record_type') == 'history']
    with open(csv_path, newline='') as f:
        rows = list(csv.DictReader(f))
    assert len(history) == len(rows) == 2
    for logged, row in zip(history, rows):
        assert logged['_step'] == int(row['Steps'])
        scalars = {key: float(value) for key, value in row.items() if value != ''}
        assert scalars.keys() <= logged.keys()
        for key in ('charts/TestRewards', 'losses/R_loss', 'charts/ProxyCorr', 'charts/DecompError'):
            assert logged[key] == pytest.approx(scalars[key], rel=1e-12), key


def test_wandb_is_quiet_and_writes_under_the_logdir(offline, monkeypatch, capsys):
    """Without the user's WANDB_SILENT / WANDB_CACHE_DIR, wandb printed ~30 lines of its own and
    wrote its service's debug logs to ~/.cache/wandb."""
    monkeypatch.setenv('HOME', str(offline / 'home'))
    monkeypatch.delenv('WANDB_SILENT')
    monkeypatch.delenv('WANDB_CACHE_DIR')
    logdir = offline / 'log'
    train.main([*TINY, '--cycles=1', '--track', '--run_name=quiet', '--logdir', str(logdir)])
    output = capsys.readouterr()
    assert not [line for line in (output.out + output.err).splitlines() if line.startswith('wandb')]
    assert not (offline / 'home').exists() and 'WANDB_CACHE_DIR' not in os.environ
    assert glob.glob(str(logdir / 'wandb' / 'cache' / 'wandb' / 'logs' / '*.log'))


def test_runs_of_one_name_get_their_own_wandb_runs(offline):
    """A sweep re-run into a fresh logdir repeats its run names; W&B must not merge the runs."""
    ids = []
    for logdir in (offline / 'first', offline / 'second'):
        train.main([*TINY, '--cycles=1', '--track', '--run_name=cell-seed0', '--logdir', str(logdir)])
        ids.append(open(logdir / 'wandb' / 'cell-seed0.id').read().strip())
    assert ids[0] != ids[1]


def test_track_without_wandb_is_one_line_before_any_file(tmp_path, monkeypatch, capsys):
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, 'find_spec',
                        lambda name, *rest: None if name == 'wandb' else find_spec(name, *rest))
    with pytest.raises(SystemExit) as exit_info:
        train.main([*TINY, '--track', '--logdir', str(tmp_path / 'log')])
    assert exit_info.value.code == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert 'wandb' in line and 'pip install -r requirements-extra.txt' in line
    assert not (tmp_path / 'log').exists()


def test_failed_wandb_login_is_one_line_before_any_file(offline, monkeypatch, capsys):
    import wandb

    def no_login(**kwargs):
        raise wandb.errors.UsageError('api_key not configured (no-tty)')
    monkeypatch.setattr(wandb, 'init', no_login)
    with pytest.raises(SystemExit) as exit_info:
        train.main([*TINY, '--track', '--logdir', str(offline / 'log')])
    assert exit_info.value.code == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith('error: --track: wandb could not start a run (api_key not configured') and 'wandb login' in line
    assert not glob.glob(str(offline / 'log' / '*'))  # W&B's folder at most: no file of the run
