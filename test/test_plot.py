"""tools/plot.py and tools/runs.py on small fixture logs of every format (project issue #9)."""
import json
import os
import re
import shutil
import sys
import types

import numpy as np
import pytest
from scipy import stats

from tools import plot, runs

STEPS = np.arange(1, 9) * 1000
ENVS = ('Hopper-v2', 'Walker2d-v2')


def run_name(env, alg, backend, seed, tag='exp'):
    return f'{tag}-{env}-{alg}-{backend}-seed{seed}-20240101-12000{seed}'


def write_run(logdir, env, alg, backend, seed, returns, steps=STEPS, config=True, tag='exp', name=None):
    """A run as train.py leaves it: rews/<tag>/<run>/<env>.npz, csv/<run>.csv, models/<run>/config.json."""
    name = name or run_name(env, alg, backend, seed, tag)
    folder = logdir / 'rews' / tag / name
    folder.mkdir(parents=True)
    returns = np.asarray(returns, np.float64)
    np.savez(folder / f'{env}.npz', info=np.stack([steps, returns], 1).astype(np.float64),
             steps=np.asarray(steps, np.int64), rewards=returns, std=np.zeros(len(steps)))
    (logdir / 'csv').mkdir(exist_ok=True)
    rows = ['Epoch,Cycle,Steps,charts/TestRewards']
    rows += [f'0,{i},{step},{float(value)!r}' for i, (step, value) in enumerate(zip(steps, returns))]
    (logdir / 'csv' / f'{name}.csv').write_text('\n'.join(rows) + '\n')
    if config:
        (logdir / 'models' / name).mkdir(parents=True)
        base, _, basis = alg.partition('-')
        (logdir / 'models' / name / 'config.json').write_text(json.dumps(
            {'tag': tag, 'env': env, 'alg': base, 'basis_alg': basis or None, 'seed': seed,
             'use_pytorch': backend == 'torch', 'backend': backend}))
    return name


def returns_of(alg, env, seed):
    """Known, distinct curves: a level per alg/env plus a per-seed offset."""
    level = {'rrd-sac': 1000.0, 'sac': 600.0}[alg] * (1 if env == 'Hopper-v2' else 2)
    return level * STEPS / STEPS[-1] + 10.0 * seed


@pytest.fixture
def logdir(tmp_path):
    log = tmp_path / 'log'
    for env in ENVS:
        for alg in ('rrd-sac', 'sac'):
            for seed in range(3):
                write_run(log, env, alg, 'torch', seed, returns_of(alg, env, seed))
    return log


def original_npz(path, steps, returns):
    """The original TF1 release's file: only the key info, (step, return) rows."""
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, info=np.stack([steps, returns], 1).astype(np.float64))
    return str(path)


# ---- reading -------------------------------------------------------------------------------------
def test_every_format_reads_with_its_metadata(tmp_path):
    log = tmp_path / 'log'
    name = write_run(log, 'Hopper-v2', 'rrd-sac', 'tf', 4, STEPS / 10.0)
    expected = {'env': 'Hopper-v2', 'alg': 'rrd-sac', 'backend': 'tf', 'seed': 4, 'tag': 'exp', 'run': name}
    for path in (log / 'rews' / 'exp' / name / 'Hopper-v2.npz', log / 'csv' / f'{name}.csv'):
        run = runs.read_run(str(path))
        np.testing.assert_array_equal(run.steps, STEPS)
        np.testing.assert_allclose(run.returns, STEPS / 10.0)
        assert run.meta == expected
    # no config.json: the run name says the same
    os.remove(log / 'models' / name / 'config.json')
    assert runs.read_run(str(log / 'csv' / f'{name}.csv')).meta == expected
    # config.json wins over the name (a run renamed by --run_name)
    write_run(log, 'Hopper-v2', 'sac', 'torch', 1, STEPS / 10.0, tag='')
    renamed = log / 'rews' / 'my_run'
    os.rename(log / 'rews' / run_name('Hopper-v2', 'sac', 'torch', 1, ''), renamed)
    os.rename(log / 'models' / run_name('Hopper-v2', 'sac', 'torch', 1, ''), log / 'models' / 'my_run')
    assert runs.read_run(str(renamed / 'Hopper-v2.npz')).meta == {
        'env': 'Hopper-v2', 'alg': 'sac', 'backend': 'torch', 'seed': 1, 'tag': '', 'run': 'my_run'}
    # the earlier layout rews/<tag>/<env>.npz: steps and rewards, metadata from the tag
    earlier = tmp_path / 'old' / 'rews' / 'rrd-sac-torch-s2' / 'Hopper-v2.npz'
    earlier.parent.mkdir(parents=True)
    np.savez(earlier, steps=STEPS, rewards=STEPS / 5.0)
    run = runs.read_run(str(earlier))
    np.testing.assert_allclose(run.returns, STEPS / 5.0)
    assert [run[key] for key in ('env', 'alg', 'backend', 'seed', 'tag')] == \
        ['Hopper-v2', 'rrd-sac', 'torch', 2, 'rrd-sac-torch-s2']
    # the original release: info rows, backend tf1-original, the rest from the names
    path = original_npz(tmp_path / 'tf1' / 'rrd_sac_seed3' / 'Walker2d-v2.npz', STEPS[::-1], STEPS[::-1] / 2.0)
    run = runs.read_run(path, overrides={'alg': 'rrd-sac-l'})
    np.testing.assert_array_equal(run.steps, STEPS)  # sorted by step
    np.testing.assert_allclose(run.returns, STEPS / 2.0)
    assert (run['env'], run['alg'], run['backend'], run['seed']) == ('Walker2d-v2', 'rrd-sac-l', 'tf1-original', 3)


def test_tags_are_read_as_given(tmp_path):
    """A tag names its rews folder as given ('RRD Ant-v2', as the original release's tags); the run
    name spells it file-name safe. Without config.json the folder tells the tag, also when the CSV
    is the log read; a named folder is a path, not a glob pattern (tags may hold '[' or '*')."""
    log = tmp_path / 'log'
    for tag, seed in (('RRD Ant-v2', 0), ('a[1]', 1)):
        name = write_run(log, 'Hopper-v2', 'rrd-sac', 'torch', seed, STEPS / 10.0, config=False, tag=tag)
        safe = name.replace(' ', '_').replace('[', '_').replace(']', '_')
        os.rename(log / 'rews' / tag / name, log / 'rews' / tag / safe)
        os.rename(log / 'csv' / f'{name}.csv', log / 'csv' / f'{safe}.csv')
    found = runs.find_runs([str(log)], note=lambda line: None)
    assert sorted((run['tag'], run['seed']) for run in found) == [('RRD Ant-v2', 0), ('a[1]', 1)]
    (run,) = runs.find_runs([str(log / 'rews' / 'a[1]')])
    assert (run['tag'], run['seed']) == ('a[1]', 1)


def test_npz_logs_of_other_envs_or_tags_stay_apart(tmp_path):
    """Two npz files are two logs (an env each, a tag folder each), whatever their folders are
    named; only a run's CSV is merged into its npz."""
    for tag in ('A', 'B'):
        for env in ('Hopper-v2', 'Walker2d-v2'):
            path = tmp_path / 'rews' / tag / 'seed0' / f'{env}.npz'
            path.parent.mkdir(parents=True, exist_ok=True)
            np.savez(path, steps=STEPS, rewards=STEPS / 10.0)
    notes = []
    found = runs.find_runs([str(tmp_path)], note=notes.append)
    assert sorted((run['tag'], run['env']) for run in found) == [
        ('A', 'Hopper-v2'), ('A', 'Walker2d-v2'), ('B', 'Hopper-v2'), ('B', 'Walker2d-v2')] and not notes


def test_run_names():
    assert runs.parse_run_name('my-v2-Hopper-v2-rrd-sac-torch-seed3-20240101-120000-1') == {
        'env': 'Hopper-v2', 'alg': 'rrd-sac', 'backend': 'torch', 'seed': 3, 'tag': 'my-v2',
        'run': 'my-v2-Hopper-v2-rrd-sac-torch-seed3-20240101-120000-1'}
    # names from before the backend part: the backend from the tag, when it says
    older = runs.parse_run_name('hop-rrdsac-torch-s0-Hopper-v2-rrd-sac-seed0-20261124-110041')
    assert [older[key] for key in ('env', 'alg', 'backend', 'tag')] == \
        ['Hopper-v2', 'rrd-sac', 'torch', 'hop-rrdsac-torch-s0']
    assert runs.parse_run_name('PongNoFrameskip-v4-dqn-seed1-20240101-120000')['backend'] == 'unknown'
    assert runs.parse_run_name('not-a-run') is None
    # tools/sweep.py's names (and other --run_name names) have no time
    assert runs.parse_run_name('paper-Hopper-v2-rrd-l-tf-seed12') == {
        'env': 'Hopper-v2', 'alg': 'rrd-l', 'backend': 'tf', 'seed': 12, 'tag': 'paper',
        'run': 'paper-Hopper-v2-rrd-l-tf-seed12'}
    assert runs.guess_from_names(['RRD Hopper-v2 seed2']) == {'alg': 'rrd', 'seed': 2}


def test_bad_logs_are_one_line_errors(tmp_path):
    with pytest.raises(ValueError, match='npz or .csv'):
        runs.read_run(str(tmp_path / 'run.txt'))
    np.savez(tmp_path / 'weights.npz', w=np.zeros(3))
    with pytest.raises(ValueError, match='no test-return log'):
        runs.read_run(str(tmp_path / 'weights.npz'))
    with pytest.raises(ValueError, match='no log matches'):
        runs.find_runs([str(tmp_path / 'missing*')])
    # unreadable files: numpy's own errors would advise unpickling, or not name the file
    (tmp_path / 'text.npz').write_text('not numpy\n')
    np.save(tmp_path / 'array.npy', np.zeros(3))
    os.replace(tmp_path / 'array.npy', tmp_path / 'array.npz')
    np.savez(tmp_path / 'whole.npz', steps=np.arange(50), rewards=np.ones(50))
    whole = (tmp_path / 'whole.npz').read_bytes()
    (tmp_path / 'cut.npz').write_bytes(whole[:len(whole) // 2])
    np.savez(tmp_path / 'objects.npz', steps=np.array([None], object), rewards=np.ones(1))
    for name, reason in (('text', 'not an npz archive'), ('array', 'a single array'), ('cut', 'zip'),
                         ('objects', 'Object arrays')):
        path = str(tmp_path / f'{name}.npz')
        with pytest.raises(ValueError, match=f'^{re.escape(path)} is not a readable .npz log \\(.*{reason}'):
            runs.read_run(path)


def test_a_logdir_reads_each_run_once(logdir, tmp_path):
    notes = []
    found = runs.find_runs([str(logdir)], note=notes.append)
    assert len(found) == 12  # 2 envs x 2 algs x 3 seeds, each both as npz and CSV
    assert notes == ['note: 12 run(s) found more than once (as npz and CSV, or by several patterns): '
                     'read each once, from its longer log']
    np.savez(logdir / 'models' / 'buffer.npz', x=np.zeros(2))  # checkpoints are not searched
    assert len(runs.find_runs([str(logdir)], note=notes.append)) == 12


def test_a_run_named_by_several_patterns_is_read_once(logdir, tmp_path):
    """Each run once, with the label of the first pattern that names it."""
    def load(*argv):
        return plot.load(plot.build_parser().parse_args(['curves', *map(str, argv)]))[0]
    found = load(logdir / 'rews', logdir / 'csv', '--labels', 'npz', 'csv')
    assert len(found) == 12 and {run['label'] for run in found} == {'npz'}
    one = logdir / 'csv' / f'{run_name("Hopper-v2", "sac", "torch", 0)}.csv'
    assert len(load(logdir, one)) == 12
    found = load(one, logdir)
    assert len(found) == 12 and [run['label'] for run in found if run['run'] == one.stem] == [str(one)]


def test_runs_without_checkpoints_are_read_once(tmp_path):
    """With models/ deleted (to free space), a sweep's run and a --run_name run are each one run,
    their metadata from the name; a sweep's own tables are no logs."""
    log = tmp_path / 'log'
    sweep_run = write_run(log, 'Hopper-v2', 'rrd-sac', 'torch', 2, STEPS / 10.0, tag='paper',
                          name='paper-Hopper-v2-rrd-sac-torch-seed2')
    named = write_run(log, 'Walker2d-v2', 'sac', 'tf', 0, STEPS / 10.0, tag='', name='my_run')
    shutil.rmtree(log / 'models')
    (log / 'sweeps' / 'paper').mkdir(parents=True)
    (log / 'sweeps' / 'paper' / 'summary.csv').write_text('run,status,steps,final,best,wall\n')
    notes = []
    found = {run['run']: run for run in runs.find_runs([str(log)], note=notes.append)}
    assert sorted(found) == [named, sweep_run]
    assert notes == ['note: 2 run(s) found more than once (as npz and CSV, or by several patterns): '
                     'read each once, from its longer log']
    assert found[sweep_run].meta == {'env': 'Hopper-v2', 'alg': 'rrd-sac', 'backend': 'torch', 'seed': 2,
                                     'tag': 'paper', 'run': sweep_run}
    assert found[named]['env'] == 'Walker2d-v2'  # from its npz's file name: the CSV does not say


# ---- curves --------------------------------------------------------------------------------------
def test_smooth_and_union_grid():
    np.testing.assert_allclose(plot.smooth(np.array([1.0, 2.0, 3.0, 4.0]), 2), [1.0, 1.5, 2.5, 3.5])
    np.testing.assert_allclose(plot.smooth(np.array([1.0, 2.0, 3.0]), 1), [1.0, 2.0, 3.0])
    grid, values = plot.on_union_grid([(np.array([0.0, 2.0]), np.array([0.0, 2.0])),
                                       (np.array([1.0, 3.0]), np.array([10.0, 30.0]))])
    np.testing.assert_array_equal(grid, [0, 1, 2, 3])
    np.testing.assert_allclose(values, [[0, 1, 2, np.nan], [np.nan, 10, 20, 30]])
    # the dashed stretch (not every run contributes) joins the solid one
    full = np.array([True, True, True, False, False, True])
    np.testing.assert_allclose(plot.partial_coverage(np.arange(6.0), full), [np.nan, np.nan, 2, 3, 4, 5])


def test_bands_on_known_numbers():
    rng = np.random.default_rng(0)
    values = rng.normal(size=(5, 4)) * [1, 2, 3, 0]
    values[0, 3] = np.nan  # the first run lacks the last point
    mean, low, high = plot.curve_band(values, 'ci', 500, rng)
    np.testing.assert_allclose(mean, np.nanmean(values, axis=0))
    assert np.all(low <= mean) and np.all(mean <= high)
    assert np.all(high[:3] - low[:3] > 0) and high[3] == low[3] == 0  # a constant column has no spread
    mean, low, high = plot.curve_band(values, 'std', 0, rng)
    np.testing.assert_allclose(high - mean, np.nanstd(values, axis=0, ddof=1))


def test_ci_band_is_the_95_percent_bootstrap_interval():
    """The 'ci' band against scipy's percentile bootstrap of the mean, per point over the runs that
    reached it; a 90% or 99% interval, or mean +- std, would fall outside the tolerance."""
    rng = np.random.default_rng(1)
    values = rng.normal(size=(40, 3)) * [1.0, 5.0, 2.0] + [0.0, 10.0, -3.0]
    values[:12, 2] = np.nan  # 12 runs stop before the last point
    _, low, high = plot.curve_band(values, 'ci', 20000, rng)
    for column in range(3):
        sample = values[~np.isnan(values[:, column]), column]
        reference = stats.bootstrap((sample,), np.mean, confidence_level=0.95, method='percentile',
                                    n_resamples=20000, random_state=2).confidence_interval
        half = (reference.high - reference.low) / 2  # ~1.96 standard errors
        assert abs(low[column] - reference.low) < 0.06 * half and abs(high[column] - reference.high) < 0.06 * half


def test_curves_group_and_render_every_format(logdir, tmp_path, capsys):
    old = original_npz(tmp_path / 'tf1' / 'rrd-sac-s0' / 'Hopper-v2.npz', STEPS[:5],
                       returns_of('rrd-sac', 'Hopper-v2', 0)[:5])
    found = runs.find_runs([str(logdir), old])
    drawn = plot.plot_curves(found, ['alg', 'backend'], out=str(tmp_path / 'c.png'), reps=200)
    assert set(drawn) == set(ENVS)
    assert set(drawn['Hopper-v2']) == {'rrd-sac torch', 'sac torch', 'rrd-sac tf1-original'}
    grid, mean, low, high, group = drawn['Hopper-v2']['sac torch']
    np.testing.assert_allclose(mean, np.mean([returns_of('sac', 'Hopper-v2', s) for s in range(3)], axis=0))
    assert np.all(low <= mean + 1e-9) and np.all(mean <= high + 1e-9)
    with open(tmp_path / 'c.png', 'rb') as file:
        assert file.read(8) == b'\x89PNG\r\n\x1a\n'
    # the command line: PDF and SVG by extension; a single run works
    plot.main([str(logdir / 'rews'), '--group', 'env', '--out', str(tmp_path / 'c.pdf'), '--reps', '50'])
    assert (tmp_path / 'c.pdf').read_bytes()[:4] == b'%PDF'
    single = str(logdir / 'csv' / f'{run_name("Hopper-v2", "sac", "torch", 0)}.csv')
    plot.main(['curves', single, '--smooth', '3', '--band', 'std', '--out', str(tmp_path / 'one.svg')])
    assert b'<svg' in (tmp_path / 'one.svg').read_bytes()[:500]


def test_curves_say_which_runs_cover_less(logdir, tmp_path, capsys):
    short = write_run(logdir, 'Hopper-v2', 'sac', 'tf', 0, np.arange(4.0), steps=STEPS[:4])
    long = write_run(logdir, 'Hopper-v2', 'sac', 'tf', 1, np.arange(8.0))
    plot.main([str(logdir / 'rews' / 'exp' / '*-tf-*'), '--labels', 'TF', '--out', str(tmp_path / 'c.png')])
    out = capsys.readouterr().out
    assert short in out and '1000..4000 of 1000..8000' in out and long not in out


def test_labels_name_patterns(logdir, tmp_path):
    old = original_npz(tmp_path / 'x' / 'Hopper-v2.npz', STEPS, STEPS / 8.0)
    opts = plot.build_parser().parse_args(['curves', str(logdir / 'rews' / 'exp' / '*sac-torch*'), old,
                                           '--labels', 'PyTorch', 'TF 1.12'])
    found, keys = plot.load(opts)
    assert keys == ['label']
    assert sorted({run['label'] for run in found}) == ['PyTorch', 'TF 1.12']


@pytest.mark.parametrize('argv, message', [
    (['nothing*.npz'], 'no log matches'),
    (['LOG', '--group', 'algo'], "unknown --group key 'algo'"),
    (['LOG', '--out', 'x.jpg'], 'use a .png, .pdf or .svg'),
    (['LOG', '--labels', 'a', 'b'], 'give one per pattern'),
    ([], 'give the runs to plot'),
    (['aggregate', 'LOG'], 'no normalisation for Hopper-v2'),
    (['aggregate', 'LOG', '--out', 'new/sub/a.png'], 'no normalisation for Hopper-v2'),
    (['aggregate', 'LOG', '--norm', 'Hopper-v2=0'], 'expected ENV=MIN,MAX'),
    (['LOG', '--reps', '0'], '--reps 0: give the number of bootstrap resamples, at least 1'),
    (['aggregate', 'LOG', '--norm', 'Hopper-v2=0,1', '--reps', '-1'], '--reps -1'),
])
def test_bad_input_is_one_line(logdir, tmp_path, monkeypatch, capsys, argv, message):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        plot.main([str(logdir) if arg == 'LOG' else arg for arg in argv])
    (line,) = capsys.readouterr().err.splitlines()
    assert exit_info.value.code == 2 and line.startswith('error: ') and message in line
    assert set(os.listdir(tmp_path)) <= {'log'}  # nothing written (the runs are in log/), no --out folder either


@pytest.mark.parametrize('table, message', [
    ('{"Hopper-v2": 3500}', 'expected {"ENV": [MIN, MAX], ...}; \'Hopper-v2\' has 3500'),
    ('{"Hopper-v2": "0,3500"}', 'expected {"ENV": [MIN, MAX], ...}; \'Hopper-v2\' has \'0,3500\''),
    ('[1, 2]', 'expected {"ENV": [MIN, MAX], ...}, not list [1, 2]'),
    ('{"Hopper-v2": [0, 1', 'is not JSON'),
])
def test_bad_norm_files_are_one_line(logdir, tmp_path, capsys, table, message):
    norm = tmp_path / 'n.json'
    norm.write_text(table)
    with pytest.raises(SystemExit) as exit_info:
        plot.main(['aggregate', str(logdir), '--norm', str(norm), '--out', str(tmp_path / 'a.png')])
    (line,) = capsys.readouterr().err.splitlines()
    assert exit_info.value.code == 2 and line.startswith(f'error: --norm {norm}') and message in line


# ---- aggregate -----------------------------------------------------------------------------------
def test_aggregate_table_matches_direct_computation(logdir, tmp_path):
    norms = {'Hopper-v2': (0.0, 1000.0), 'Walker2d-v2': (0.0, 2000.0)}
    found = runs.find_runs([str(logdir / 'rews')])
    matrices, envs = plot.score_matrices(found, ['alg'], norms, 0.25)
    # score = mean of the last 2 of 8 evaluations, normalised
    last_two = STEPS[-2:].mean() / STEPS[-1]
    expected = {alg: np.array([[returns_of(alg, env, s)[-2:].mean() / norms[env][1] for env in envs]
                               for s in range(3)])
                for alg in ('rrd-sac', 'sac')}
    assert envs == list(ENVS)
    for alg in expected:
        np.testing.assert_allclose(matrices[alg], expected[alg])
    assert matrices['rrd-sac'][0, 0] == pytest.approx(last_two)
    text = plot.aggregate(found, ['alg'], norms, dict.fromkeys(norms, '--norm'), 0.25, reps=50,
                          out=str(tmp_path / 'agg.svg'))
    cells = [line.split('|') for line in text.splitlines() if line.startswith('| ')]
    rows = {row[1].strip(): row for row in cells if '×' in row[2]}
    improvement = {(row[1].strip(), row[2].strip()): row[3] for row in cells
                   if row[1].strip() in expected and '×' not in row[2]}
    for alg, scores in expected.items():
        iqm, mean = stats.trim_mean(scores.ravel(), 0.25), scores.mean()
        assert rows[alg][3].strip().startswith(f'{iqm:.3f} [') and rows[alg][4].strip().startswith(f'{mean:.3f} [')
        low, high = (float(v) for v in rows[alg][3].split('[')[1].rstrip('] ').split(','))
        assert low <= iqm <= high
    assert rows['rrd-sac'][2].strip() == '3 × 2'
    assert improvement == {('rrd-sac', 'sac'): ' 1.000 [1.000, 1.000] '}  # every rrd-sac run beats every sac run
    assert (tmp_path / 'agg.md').read_text() == text
    assert b'<svg' in (tmp_path / 'agg.svg').read_bytes()[:500]


def test_aggregate_normalises_by_reference_runs_or_json(logdir, tmp_path, capsys):
    reference = runs.find_runs([str(logdir / 'rews' / 'exp' / '*-v2-sac-torch-*')])
    norms = plot.reference_norms(reference, 0.25)
    for env in ENVS:
        curves = [returns_of('sac', env, s) for s in range(3)]
        assert norms[env] == pytest.approx((np.mean([c[0] for c in curves]), np.mean([c[-2:].mean() for c in curves])))
    (tmp_path / 'norm.json').write_text(json.dumps({'Hopper-v2': [0, 1000]}))
    assert plot.parse_norm([str(tmp_path / 'norm.json')]) == {'Hopper-v2': (0.0, 1000.0)}
    plot.main(['aggregate', str(logdir / 'rews'), '--reference', str(logdir / 'rews' / 'exp' / '*-v2-sac-torch-*'),
               '--norm', 'Hopper-v2=0,1000', '--group', 'alg', '--reps', '20', '--out', str(tmp_path / 'agg')])
    out = capsys.readouterr().out
    assert '| Hopper-v2 | 0.0 | 1000.0 | --norm |' in out and '| Walker2d-v2 |' in out and 'reference runs' in out
    assert (tmp_path / 'agg.png').read_bytes()[:4] == b'\x89PNG'


def test_aggregate_without_rliable_says_how_to_install(logdir, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, 'rliable', None)
    with pytest.raises(SystemExit):
        plot.main(['aggregate', str(logdir), '--norm', 'Hopper-v2=0,1', 'Walker2d-v2=0,1',
                   '--out', str(tmp_path / 'a.png')])
    assert re.fullmatch(r'error: .*pip install -r requirements-extra.txt\n', capsys.readouterr().err)


# ---- proxy ---------------------------------------------------------------------------------------
def test_proxy_subcommand_hands_over_to_proxy_trace(monkeypatch):
    calls = []
    fake = types.ModuleType('tools.proxy_trace')
    fake.add_arguments = lambda parser: parser.add_argument('--checkpoint')
    fake.main = calls.append
    monkeypatch.setitem(sys.modules, 'tools.proxy_trace', fake)
    monkeypatch.setattr(sys.modules['tools'], 'proxy_trace', fake, raising=False)
    plot.main(['proxy', '--checkpoint', 'log/models/run'])
    assert len(calls) == 1 and calls[0].checkpoint == 'log/models/run'
