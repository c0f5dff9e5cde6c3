"""tools/sweep.py: grid expansion and run names (no Ray), and real sweeps of tiny train.py runs on
a local Ray instance: a 2 x 2 grid with a failing cell, a re-run that skips it, a killed sweep
that a re-run continues."""
import csv
import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from types import SimpleNamespace

import pytest

from tools import sweep
from utils.os_utils import hold_run

needs_ray = pytest.mark.skipif(importlib.util.find_spec('ray') is None,
                               reason='Ray is an extra: pip install -r requirements-extra.txt')
needs_yaml = pytest.mark.skipif(importlib.util.find_spec('yaml') is None, reason='PyYAML (a Ray dependency)')
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = ['--epochs=1', '--cycles=3', '--iterations=2', '--timesteps=50', '--train_batches=5',
        '--batch_size=32', '--warmup=100', '--buffer_size=2000', '--test_rollouts=1',
        '--test_timesteps=100']


# ---- the grid, without Ray ----------------------------------------------------------------------
def test_variants_name_their_train_flags():
    assert sweep.variant_flags('sac') == ('--alg=sac',)
    assert sweep.variant_flags('rrd') == ('--alg=rrd',)
    assert sweep.variant_flags('rrd-sac') == ('--alg=rrd', '--basis_alg=sac')
    assert sweep.variant_flags('ircr-td3') == ('--alg=ircr', '--basis_alg=td3')
    assert sweep.variant_flags('rrd-l') == ('--alg=rrd', '--rrd_bias_correction=True')
    assert sweep.variant_flags('rrd-l-td3') == ('--alg=rrd', '--rrd_bias_correction=True', '--basis_alg=td3')
    assert sweep.variant_flags('k8', {'k8': '--alg=rrd --rrd_sample_size=8'}) == ('--alg=rrd', '--rrd_sample_size=8')
    for bad in ('sac-td3', 'rrd-foo', 'ppo'):
        with pytest.raises(sweep.SweepError, match='unknown algorithm variant'):
            sweep.variant_flags(bad)


def test_grid_expands_in_order_with_deterministic_run_names():
    cells = sweep.expand('exp', ['Hopper-v2', 'Pendulum-v1'], ['rrd-l', 'sac'], ['torch', 'tf'], [0, 1],
                         ['--epochs=2'], logdir='/logs')
    assert len(cells) == 16
    assert cells[0].run == 'exp-Hopper-v2-rrd-l-torch-seed0'
    assert cells[1].run == 'exp-Hopper-v2-rrd-l-torch-seed1'
    assert cells[2].run == 'exp-Hopper-v2-rrd-l-tf-seed0'
    assert cells[-1].run == 'exp-Pendulum-v1-sac-tf-seed1'
    assert cells[0].argv == ('--env=Hopper-v2', '--alg=rrd', '--rrd_bias_correction=True', '--use_pytorch=True',
                             '--seed=0', '--tag=exp', '--logdir=/logs', '--epochs=2')
    assert cells == sweep.expand('exp', ['Hopper-v2', 'Pendulum-v1'], ['rrd-l', 'sac'], ['torch', 'tf'], [0, 1],
                                 ['--epochs=2'], logdir='/logs')
    # a repeated env, variant or backend would be one run name started twice, into the same files
    assert cells == sweep.expand('exp', ['Hopper-v2', 'Pendulum-v1', 'Hopper-v2'], ['rrd-l', 'sac', 'sac'],
                                 ['torch', 'tf', 'torch'], [0, 1], ['--epochs=2'], logdir='/logs')
    custom = sweep.expand('exp', ['Hopper-v2'], ['k8'], ['torch'], [0], variants={'k8': ['--alg=rrd', '--basis_alg=td3']})
    assert custom[0].argv[1:3] == ('--alg=rrd', '--basis_alg=td3')


@pytest.mark.parametrize('kwargs, message', [
    (dict(name='a/b'), 'not a plain name'),
    (dict(backends=['jax']), 'unknown backend'),
    (dict(seeds=[]), 'no seeds'),
    (dict(overrides=['--seed=3']), '--seed is set by the sweep'),
    (dict(overrides=['--logdir', 'x']), '--logdir is set by the sweep'),
    (dict(algs=['myv'], variants={'myv': ['--alg=sac', '--env=Hopper-v2']}), "variant 'myv' sets train.py flag --env"),
])
def test_bad_grids_are_one_line_errors(kwargs, message):
    grid = dict(name='s', envs=['Pendulum-v1'], algs=['sac'], backends=['torch'], seeds=[0]) | kwargs
    with pytest.raises(sweep.SweepError, match=message):
        sweep.expand(**grid)


def test_seed_ranges():
    assert sweep.parse_seeds(['0-3', '7', '2']) == [0, 1, 2, 3, 7]
    for bad in ('3-1', 'x', '-1'):
        with pytest.raises(sweep.SweepError, match='bad seed'):
            sweep.parse_seeds([bad])


@needs_yaml
def test_grid_file_with_flags_winning(tmp_path, capsys):
    grid = tmp_path / 'grid.yaml'
    grid.write_text('name: paper\nenvs: [Hopper-v2]\nalgs: [rrd, rrd-l, ircr]\nseeds: [0-2]\n'
                    'overrides: --epochs=5\nvariants:\n  k8: --alg=rrd --rrd_sample_size=8\n')
    assert sweep.main(['run', '--grid', str(grid), '--logdir', str(tmp_path), '--seeds', '4', '--algs', 'k8',
                       '--dry_run', '--', '--cycles=2']) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines == [f'{sweep.TRAIN} --env=Hopper-v2 --alg=rrd --rrd_sample_size=8 --use_pytorch=True --seed=4 '
                     f'--tag=paper --logdir={tmp_path} --epochs=5 --cycles=2 '
                     f'--run_name=paper-Hopper-v2-k8-torch-seed4 --threads=1']
    grid.write_text('name: paper\nenv: [Hopper-v2]\n')
    assert sweep.main(['run', '--grid', str(grid), '--dry_run']) == 2
    assert capsys.readouterr().err.strip() == (f"error: grid file {grid}: unexpected ['env']; allowed keys: "
                                               f"name, envs, algs, backends, seeds, overrides, variants, logdir")


@needs_yaml
@pytest.mark.parametrize('line, message', [
    ('variants: {k: 5}', 'variants: k must be train.py flags (a string or a list of strings), not 5'),
    ('variants: [k]', "variants must map names to train.py flags (e.g. k8: --alg=rrd --rrd_sample_size=8), not ['k']"),
    ('seeds: {a: 1}', "seeds must be a string or a list of strings, not {'a': 1}"),
    ('name: [a]', "name must be a string, not ['a']"),
    ('overrides: 10', 'overrides must be train.py flags (a string or a list of strings), not 10'),
])
def test_grid_file_values_of_a_wrong_type_are_one_line_errors(tmp_path, capsys, line, message):
    grid = tmp_path / 'grid.yaml'
    grid.write_text(f'name: g\nenvs: [Pendulum-v1]\nalgs: [sac]\n{line}\n')
    assert sweep.main(['run', '--grid', str(grid), '--dry_run']) == 2
    assert capsys.readouterr().err == f'error: grid file {grid}: {message}\n'


@needs_yaml
def test_grid_file_numbers_mean_text(tmp_path, capsys):
    """YAML reads these as numbers; each means the text it shows."""
    grid = tmp_path / 'grid.yaml'
    grid.write_text('name: 2024\nenvs: [123]\nalgs: [k]\nseeds: 3\noverrides: [--epochs, 10]\nlogdir: 5\n'
                    'variants: {k: [--alg=sac, --gamma, 0.9]}\n')
    assert sweep.main(['run', '--grid', str(grid), '--dry_run']) == 0
    assert capsys.readouterr().out.split() == [
        sweep.TRAIN, '--env=123', '--alg=sac', '--gamma', '0.9', '--use_pytorch=True', '--seed=3', '--tag=2024',
        f'--logdir={os.path.abspath("5")}', '--epochs', '10', '--run_name=2024-123-k-torch-seed3', '--threads=1']


@needs_yaml
@pytest.mark.parametrize('grid, cells', [('mujoco-paper.yaml', 8 * 3 * 30), ('backend-equivalence.yaml', 2 * 10)])
def test_example_grids_expand(grid, cells, capsys):
    assert sweep.main(['run', '--grid', os.path.join(REPO, 'tools', 'sweeps', grid), '--dry_run']) == 0
    assert len(capsys.readouterr().out.splitlines()) == cells


def test_memory_reservation_is_the_buffer_size_plus_overhead(monkeypatch):
    from algorithm.replay_buffer import storage
    monkeypatch.setattr(storage, 'mem_available', lambda: None)  # 7 GB of Atari frames fit anywhere
    hopper, pong = sweep.expand('m', ['Hopper-v2', 'Pong'], ['rrd'], ['torch'], [0])
    plan = sweep.Plan([hopper, pong])
    overhead = sweep.PROCESS_OVERHEAD['torch']
    hopper_buffer, pong_buffer = plan.memory[hopper.run] - overhead, plan.memory[pong.run] - overhead
    # 1M Hopper transitions: 11 float32 obs + 3 float32 acts + reward + done, 5% spare slots.
    assert 60e6 < hopper_buffer < 70e6
    # 1M Atari frames of 84 x 84 bytes (stacks rebuilt from single frames), 2% spare slots.
    assert 7.1e9 < pong_buffer < 7.5e9
    assert plan.total_steps[hopper.run] == 3 * 100 * 100 * 100


def test_cells_keep_their_flags(tmp_path):
    record = sweep.Sweep(str(tmp_path), 's')
    record.write_cells(record.merge_cells(sweep.expand('s', ['Pendulum-v1'], ['sac'], ['torch'], [0, 1])))
    record.write_cells(record.merge_cells(sweep.expand('s', ['Pendulum-v1'], ['sac'], ['torch'], [2])))
    assert len(record.cells()) == 3
    with pytest.raises(sweep.SweepError, match=r'already ran with other flags \(--epochs 3 -> 2\)'):
        record.merge_cells(sweep.expand('s', ['Pendulum-v1'], ['sac'], ['torch'], [0], ['--epochs=2']))
    # the same flags in another order or spelling are the same cell (they were refused, with no difference named)
    record.write_cells(record.merge_cells(sweep.expand('s', ['Pendulum-v1'], ['sac'], ['torch'], [3],
                                                       ['--epochs=2', '--cycles=5'])))
    record.merge_cells(sweep.expand('s', ['Pendulum-v1'], ['sac'], ['torch'], [3], ['--cycles', '5', '--epochs=2']))
    with pytest.raises(sweep.SweepError, match=r'already ran with other flags \(--cycles 5 -> 6\)'):
        record.merge_cells(sweep.expand('s', ['Pendulum-v1'], ['sac'], ['torch'], [3], ['--cycles', '6', '--epochs=2']))


@pytest.mark.parametrize('threads, gpus, memory, message', [
    (2, 0, 1, r'the largest: 1 CPU\); lower --threads \(or more --num_cpus\)$'),
    (1, 0.5, 1, r'the largest: 0 GPU\); lower --gpus_per_run$'),
    (1, 0, 9, r'the largest: 8.0 GiB of memory\); lower --buffer_size$'),
])
def test_a_cell_no_node_holds_names_what_is_short(threads, gpus, memory, message):
    """The message blamed memory whatever was short (CPUs with --threads 2 on a 1-CPU node, a GPU)."""
    class Ray:
        @staticmethod
        def nodes():
            return [{'Alive': True, 'Resources': {'CPU': 1.0, 'memory': 8 * 2**30}}]
    plan = SimpleNamespace(memory={'cell': memory * 2**30})
    opts = SimpleNamespace(threads=threads, gpus_per_run=gpus)
    with pytest.raises(sweep.SweepError, match=message):
        sweep.check_fits(Ray, plan, ['cell'], opts)


def test_finished_cells_are_not_sized_again(tmp_path, capsys):
    """A re-run of a sweep that is done needs no memory for the buffers of its cells (the machine
    may be a smaller one now): nothing is sized, nothing fails."""
    done, diverged = sweep.expand('s', ['Pendulum-v1'], ['sac'], ['torch'], [0, 1])
    for cell, status in ((done, 'finished'), (diverged, 'diverged')):
        os.makedirs(tmp_path / 'models' / cell.run)
        (tmp_path / 'models' / cell.run / 'status.json').write_text(json.dumps({'status': status}))
    argv = ['run', '--name', 's', '--envs', 'Pendulum-v1', '--algs', 'sac', '--seeds', '0-1', '--logdir', str(tmp_path),
            '--', '--buffer_size=1000000000000']  # 20 TiB: the buffer's own check refuses it on any machine
    assert sweep.main(argv) == 0, capsys.readouterr().err
    assert 'sweep s: 2 cells, 2 already done, 0 to run, 0 rejected' in capsys.readouterr().out


def test_a_second_driver_of_a_sweep_is_refused(tmp_path, capsys):
    """Two drivers of one sweep would launch the same cells; the second stops before it reads
    anything (the cluster address would fail only later)."""
    with hold_run(str(tmp_path / 'sweeps' / 's')):  # the first driver
        assert sweep.main(['run', '--name', 's', '--envs', 'Pendulum-v1', '--algs', 'sac', '--logdir', str(tmp_path),
                           '--address', '127.0.0.1:1']) == 2
    assert capsys.readouterr().err == (f'error: sweep s is already running in another process (pid {os.getpid()}); '
                                       f'let it finish, or stop it (Ctrl-C) before running it again\n')


@pytest.mark.parametrize('flags, message', [
    (['--norm', 'garbage'], "--norm 'garbage': expected ENV=MIN,MAX"),
    (['--reference', 'nothing/*.npz'], '--reference nothing/*.npz: no file or folder matches it'),
    (['--logdir='], '--logdir is empty'),
])
def test_summary_options_are_checked_before_the_sweep_trains(tmp_path, monkeypatch, capsys, flags, message):
    """A bad --norm or --reference was a note after the whole sweep had trained (exit 0); an empty
    --logdir meant the current folder."""
    monkeypatch.chdir(tmp_path)
    assert sweep.main(['run', '--name', 's', '--envs', 'Pendulum-v1', '--algs', 'sac', '--dry_run', *flags]) == 2
    assert capsys.readouterr().err.startswith(f'error: {message}') and os.listdir(tmp_path) == []


def test_a_cell_decides_how_to_start_as_it_starts(tmp_path):
    """A cell's process is chosen when it starts, not when it was queued: a fresh start, a resume
    once train.py created the run, nothing while another process runs it. Its failure is read
    from its own output."""
    fake = tmp_path / 'fake_train.py'
    fake.write_text('import sys\nprint("training", sys.argv[1])\nraise ValueError("boom")\n')
    run_dir, out = tmp_path / 'models' / 'r', tmp_path / 'r.out'
    out.write_text('error: the failure of an earlier process\n')
    fresh, resume = ([sys.executable, str(fake), mode] for mode in ('fresh', 'resume'))

    def run_cell():
        return sweep.CellProcess().run(fresh, resume, str(run_dir), {}, str(out))
    result = run_cell()
    assert result['rc'] == 1 and result['holder'] is None
    assert 'training fresh' in out.read_text()
    assert sweep.failure_line(str(out), result['offset']) == 'ValueError: boom'
    run_dir.mkdir(parents=True)
    (run_dir / 'config.json').write_text('{}')  # train.py created the run since
    result = run_cell()
    assert 'training resume' in out.read_text()[result['offset']:]
    with hold_run(str(run_dir)):  # a live run of another process
        before = out.read_text()
        result = run_cell()
    assert result['holder'] == str(os.getpid()) and result['rc'] is None
    assert out.read_text() == before  # not started
    # taken by another process between the probe and the start: train.py says so (exit 75)
    fake.write_text('import sys\nsys.exit(75)\n')
    result = run_cell()
    assert result['holder'] == '' and result['rc'] is None
    # another process writing to the same log after this one: train.py's error line wins
    with open(out, 'a') as log:
        offset = log.tell()
        log.write('error: --gamma must be in [0, 1], got 2.0\n  epoch 3 of another process\n')
    assert sweep.failure_line(str(out), offset) == 'error: --gamma must be in [0, 1], got 2.0'


def test_progress_eta_counts_the_steps_of_ended_cells():
    """The ETA extrapolates the sweep's speed so far: cells that already ended count towards it."""
    status = {'a': {'env_steps': 8000, 'total_env_steps': 8000},
              'b': {'env_steps': 2000, 'total_env_steps': 8000}}
    fake_sweep = type('FakeSweep', (), {'name': 'demo', 'status': lambda self, run: status.get(run)})()
    plan = type('FakePlan', (), {'total_steps': {'a': 8000, 'b': 8000, 'c': 8000}})()
    progress = sweep.Progress(fake_sweep, plan, ['a', 'b', 'c'], {})
    progress.first_steps = {run: (0, 8000) for run in 'abc'}
    progress.start -= 100  # 10,000 steps in 100 s; 6,000 + 8,000 left: 140 s
    progress.todo.remove('a')
    line = progress.line(['b']).splitlines()[0]
    assert '1 running, 1 queued' in line and line.endswith('ETA 0:02:20'), line


def test_summary_from_existing_logs(tmp_path, capsys):
    record = sweep.Sweep(str(tmp_path), 's')
    done, stopped, pending, killed = sweep.expand('s', ['Pendulum-v1'], ['sac'], ['torch'], [0, 1, 2, 3])
    record.write_cells(record.merge_cells([done, stopped, pending, killed]))
    os.makedirs(tmp_path / 'models' / killed.run)  # killed with its driver: 'running', no process, no event
    (tmp_path / 'models' / killed.run / 'status.json').write_text(json.dumps({'status': 'running'}))
    for cell, status, returns in ((done, 'finished', [-900.0, -300.0, -450.0]), (stopped, 'interrupted', [-800.0])):
        os.makedirs(tmp_path / 'models' / cell.run)
        (tmp_path / 'models' / cell.run / 'status.json').write_text(json.dumps({'status': status}))
        os.makedirs(tmp_path / 'csv', exist_ok=True)
        with open(tmp_path / 'csv' / f'{cell.run}.csv', 'w', newline='') as file:
            writer = csv.writer(file)
            writer.writerow(['Epoch', 'Steps', 'charts/TestRewards'])
            writer.writerows([0, 100 * (row + 1), value] for row, value in enumerate(returns))
        record.record_event(run=cell.run, rc=0, status=status, seconds=30.0, node='n', ended=0)
    record.record_event(run=done.run, rc=0, status='finished', seconds=45.0, node='n', ended=1)
    assert sweep.main(['summary', '--name', 's', '--logdir', str(tmp_path), '--no_plots']) == 0
    out = capsys.readouterr().out
    assert f'| {done.run} | finished | 300 | -450.0 | -300.0 | 0:01:15 |' in out
    assert f'| {stopped.run} | interrupted | 100 | -800.0 | -800.0 | 0:00:30 |' in out
    assert f'| {pending.run} | pending | 0 | - | - | 0:00:00 |' in out
    assert f'| {killed.run} | interrupted | 0 | - | - | 0:00:00 |' in out
    assert 'sweep s: 1 finished, 2 interrupted, 1 pending' in out
    assert (tmp_path / 'sweeps' / 's' / 'summary.md').exists()
    assert sweep.main(['summary', '--name', 'nope', '--logdir', str(tmp_path)]) == 2
    assert capsys.readouterr().err.startswith("error: no sweep 'nope' under")


# ---- real sweeps on a local Ray instance --------------------------------------------------------
def start_sweep(tmp_path, name, algs, seeds, extra=(), overrides=TINY):
    """The sweep tool as a user runs it, in its own session (so its Ray processes can be cleaned
    up as a group) and from an empty working directory (which must stay empty)."""
    cwd = tmp_path / 'cwd'
    cwd.mkdir(exist_ok=True)
    grid = tmp_path / f'{name}.json'
    grid.write_text(json.dumps({'name': name, 'envs': ['Pendulum-v1'], 'algs': algs, 'seeds': seeds,
                                'overrides': overrides, 'logdir': str(tmp_path / 'log'),
                                'variants': {'bad': '--alg=sac --gamma=2'}}))
    return subprocess.Popen([sys.executable, os.path.join(REPO, 'tools', 'sweep.py'), 'run', '--grid', str(grid),
                             '--num_cpus=2', '--progress_every=5', *extra],
                            cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def finish(proc, timeout=150):
    try:
        out, err = proc.communicate(timeout=timeout)
    finally:
        kill_group(proc.pid)
    return proc.returncode, out, err


def kill_group(pgid):
    """Ray's leftovers of a sweep (its agents outlive a SIGKILLed driver)."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def status(tmp_path, run):
    path = tmp_path / 'log' / 'models' / run / 'status.json'
    return json.loads(path.read_text()) if path.exists() else {}


def csv_steps(tmp_path, run):
    with open(tmp_path / 'log' / 'csv' / f'{run}.csv', newline='') as file:
        return [int(float(row['Steps'])) for row in csv.DictReader(file)]


@pytest.fixture(scope='module')
def grid_sweep(tmp_path_factory):
    """A 2 x 2 grid (sac, rrd-sac) x seeds (0, 1) plus a cell that train.py rejects."""
    tmp_path = tmp_path_factory.mktemp('sweep')
    start = time.time()
    rc, out, err = finish(start_sweep(tmp_path, 'grid', ['sac', 'rrd-sac', 'bad'], [0, 1]))
    return tmp_path, rc, out, err, time.time() - start


@needs_ray
def test_grid_sweep_runs_every_cell_and_reports_the_failed_one(grid_sweep):
    tmp_path, rc, out, err, seconds = grid_sweep
    assert rc == 1, out + err  # some cell failed
    runs = [f'grid-Pendulum-v1-{variant}-torch-seed{seed}' for variant in ('sac', 'rrd-sac') for seed in (0, 1)]
    for run in runs:
        assert status(tmp_path, run)['status'] == 'finished'
        assert f'| {run} | finished | 300 |' in out
        assert csv_steps(tmp_path, run) == [100, 200, 300]
        assert (tmp_path / 'log' / 'rews' / 'grid' / run / 'Pendulum-v1.npz').exists()
        config = json.loads((tmp_path / 'log' / 'models' / run / 'config.json').read_text())
        assert config['tag'] == 'grid' and config['threads'] == 1 and config['run_name'] == run
    assert json.loads((tmp_path / 'log' / 'models' / runs[3] / 'config.json').read_text())['alg'] == 'rrd'
    bad = 'grid-Pendulum-v1-bad-torch-seed0'
    log = tmp_path / 'log' / 'sweeps' / 'grid' / f'{bad}.out'
    reported = next(line for line in out.splitlines() if line.startswith(f'FAILED   {bad}: '))
    assert 'error: --gamma must be in [0, 1], got 2.0' in reported and reported.endswith(f'(log: {log})')
    assert log.read_text().startswith('error: --gamma must be in [0, 1]')
    assert 'sweep grid: 2 failed, 4 finished' in out
    assert os.listdir(tmp_path / 'cwd') == []
    assert err == '', err  # Ray's own messages stay out of the console
    print(f'2 x 2 grid: {seconds:.0f} s')


@needs_ray
def test_rerun_skips_finished_cells(grid_sweep):
    tmp_path = grid_sweep[0]
    rc, out, err = finish(start_sweep(tmp_path, 'grid', ['sac', 'rrd-sac', 'bad'], [0, 1]))
    assert rc == 1, out + err
    assert 'sweep grid: 6 cells, 4 already done, 0 to run, 2 rejected' in out
    log = (tmp_path / 'log' / 'sweeps' / 'grid' / 'grid-Pendulum-v1-sac-torch-seed0.out').read_text()
    assert log.count('# sweep: ') == 1  # launched once, by the first sweep


@needs_ray
def test_a_cell_running_in_another_process_is_left_alone(tmp_path):
    """A sweep restarted while its old cells still run reports them running, not failed, and
    starts no second process on them."""
    run = 'live-Pendulum-v1-sac-torch-seed0'
    folder = tmp_path / 'log' / 'sweeps' / 'live'
    folder.mkdir(parents=True)
    (folder / f'{run}.out').write_text('  epoch 3 of the old process\n')
    with hold_run(str(tmp_path / 'log' / 'models' / run)):  # the old sweep's train.py
        (tmp_path / 'log' / 'models' / run / 'config.json').write_text('{}')
        (tmp_path / 'log' / 'models' / run / 'status.json').write_text(json.dumps({'status': 'running'}))
        rc, out, err = finish(start_sweep(tmp_path, 'live', ['sac'], [0]))
    assert rc == 0, out + err
    assert f'running  {run} in another process (pid {os.getpid()}): not started here' in out
    assert 'FAILED' not in out and f'| {run} | running |' in out
    assert not (folder / 'events.jsonl').exists()  # no process of this sweep ended
    assert (folder / f'{run}.out').read_text() == '  epoch 3 of the old process\n'


@needs_ray
def test_killed_sweep_continues_on_rerun(tmp_path):
    runs = [f'killed-Pendulum-v1-sac-torch-seed{seed}' for seed in (0, 1)]
    longer = [*TINY, '--cycles=20', '--train_batches=50']  # seconds per cell even on a fast machine: the kill lands mid-run
    proc = start_sweep(tmp_path, 'killed', ['sac'], [0, 1], ['--num_cpus=1'], longer)  # one cell at a time
    try:
        deadline, running = time.time() + 90, []
        while not running and time.time() < deadline:  # Ray picks which cell runs first
            running = [run for run in runs if status(tmp_path, run).get('status') == 'running'
                       and status(tmp_path, run).get('env_steps', 0) >= 100]
            time.sleep(0.2)
        assert running, 'no cell got going'
        (killed_run,), other = running, next(run for run in runs if run not in running)
        kill_group(proc.pid)  # SIGKILL the sweep and its Ray processes: no chance to stop the cells
        proc.wait()
        killed = time.time()
        while status(tmp_path, killed_run).get('status') == 'running' and time.time() < killed + 60:
            time.sleep(0.2)  # the cell's train.py gets SIGTERM when its Ray worker dies
    finally:
        kill_group(proc.pid)
    assert status(tmp_path, killed_run)['status'] == 'interrupted'
    assert status(tmp_path, other).get('status') in (None, 'finished')  # not started yet, or done before
    rc, out, err = finish(start_sweep(tmp_path, 'killed', ['sac'], [0, 1], overrides=longer))
    assert rc == 0, out + err
    for run in runs:
        assert status(tmp_path, run)['status'] == 'finished'
        assert csv_steps(tmp_path, run) == list(range(100, 2100, 100))  # every evaluation point once
    log = (tmp_path / 'log' / 'sweeps' / 'killed' / f'{killed_run}.out').read_text()
    assert f'--resume={killed_run}' in log


@pytest.mark.slow
@needs_ray
@pytest.mark.parametrize('how', ['ctrl-c', 'sigterm'])
def test_ctrl_c_stops_running_cells_with_a_checkpoint(tmp_path, how):
    """Ctrl-C in a terminal (the whole process group), or SIGTERM to the driver alone (a scheduler;
    ray.init had replaced that handler with one that ended the driver at once)."""
    run = 'stopped-Pendulum-v1-sac-torch-seed0'
    longer = [*TINY, '--cycles=20', '--train_batches=50']  # seconds per cell: Ctrl-C lands mid-run
    proc = start_sweep(tmp_path, 'stopped', ['sac'], [0], overrides=longer)
    try:
        deadline = time.time() + 90
        while status(tmp_path, run).get('env_steps', 0) < 100 and time.time() < deadline:
            time.sleep(0.2)
        if how == 'ctrl-c':
            os.killpg(proc.pid, signal.SIGINT)
        else:
            os.kill(proc.pid, signal.SIGTERM)
        rc, out, err = finish(proc)
    finally:
        kill_group(proc.pid)
    assert rc == 130, out + err
    assert f'stopped  {run}' in out and 'run the same command again to continue' in out
    assert status(tmp_path, run)['status'] == 'interrupted'
    assert 'stopped by SIGINT' in (tmp_path / 'log' / 'sweeps' / 'stopped' / f'{run}.out').read_text()
    rc, out, err = finish(start_sweep(tmp_path, 'stopped', ['sac'], [0], overrides=longer))
    assert rc == 0, out + err
    assert csv_steps(tmp_path, run) == list(range(100, 2100, 100))
