"""tools/compare.py on synthetic npz and CSV logs in train.py's formats and the original
release's npz (project issues #4 and #9)."""
import argparse
import csv
import json
import os
import re

import numpy as np
import pytest
from scipy import stats

from tools import compare, runs

STEPS = np.arange(1, 11) * 1000


def write_npz(path, steps, returns):
    """The layout of Logger.save_npz: steps, rewards and std."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    np.savez(path, steps=np.asarray(steps, np.int64), rewards=np.asarray(returns, np.float64),
             std=np.zeros(len(steps)))
    return str(path)


def write_csv(path, steps, returns):
    """The layout of Logger's CSV: a header of registered columns; cycles before the first test
    (or with missing values) leave cells empty."""
    with open(path, 'w', newline='') as file:
        writer = csv.writer(file)
        writer.writerow(['Epoch', 'Cycle', 'Episodes', 'Steps', 'charts/TestRewards', 'losses/Q_loss'])
        writer.writerow([0, 0, 3, 500, '', ''])
        for i, (step, value) in enumerate(zip(steps, returns)):
            writer.writerow([0, i + 1, 10 * i, int(step), repr(float(value)), 1.5])
    return str(path)


def curves(seed, n, shift=0.0, noise=20.0):
    rng = np.random.RandomState(seed)
    return [100 + 30 * np.log1p(STEPS / 1000) + shift + rng.normal(scale=noise, size=STEPS.size) for _ in range(n)]


def test_npz_and_csv_read_the_same(tmp_path):
    returns = curves(0, 1)[0]
    npz = write_npz(tmp_path / 'rews' / 'tag' / 'Hopper-v2.npz', STEPS, returns)
    table = write_csv(tmp_path / 'run.csv', STEPS, returns)
    original = tmp_path / 'tf1' / 'Hopper-v2.npz'
    original.parent.mkdir()
    np.savez(original, info=np.stack([STEPS, returns], 1))  # the original release: info rows only
    for path in (npz, table, str(original)):
        run = runs.read_run(path)
        np.testing.assert_array_equal(run.steps, STEPS)
        np.testing.assert_allclose(run.returns, returns)
    assert runs.read_run(str(original))['backend'] == 'tf1-original'


def test_align_interpolates_onto_the_reference_steps():
    a = [(STEPS.astype(float), STEPS / 100.0)]
    b = [(STEPS[:-1] + 500.0, (STEPS[:-1] + 500.0) / 100.0)]  # offset steps, ends earlier
    grid, curves_a, curves_b = compare.align(a, b)
    np.testing.assert_array_equal(grid, STEPS[1:-1])  # the range both cover: 1500 .. 9500
    np.testing.assert_allclose(curves_b[0], grid / 100.0)  # linear data interpolates exactly
    np.testing.assert_allclose(curves_a[0], grid / 100.0)


def test_statistics():
    same = np.array([10.0, 12.0, 11.0, 9.0])
    assert compare.welch(same, same + 0.1) > 0.5
    assert compare.welch(same, same + 50.0) < 0.01
    assert compare.tost(same, same + 0.1, margin=10.0) < 0.05       # equivalent within +-10
    assert compare.tost(same, same + 0.1, margin=0.5) > 0.05        # too noisy for +-0.5
    assert np.isnan(compare.welch(same[:1], same))                  # one run: no test
    assert compare.verdict(0.5, 0.01, 0.05) == 'equivalent within the margin'
    assert compare.verdict(0.01, 0.5, 0.05) == 'significantly different'
    assert compare.verdict(0.5, 0.5, 0.05).startswith('inconclusive')


def test_summaries_final_return_and_auc():
    grid = np.array([0.0, 1000.0, 2000.0])
    runs = np.array([[0.0, 10.0, 20.0], [0.0, 0.0, 0.0]])
    out = compare.summaries(grid, runs, final_fraction=0.34)  # the last evaluation only
    np.testing.assert_allclose(out['final return'], [20.0, 0.0])
    np.testing.assert_allclose(out['AUC (mean return)'], [10.0, 0.0])


@pytest.mark.parametrize('shift, expected', [(0.0, 'equivalent'), (300.0, 'significantly different')])
def test_compare_report_and_plot(tmp_path, shift, expected):
    paths_a = [write_npz(tmp_path / 'a' / f's{i}' / 'Hopper-v2.npz', STEPS, c)
               for i, c in enumerate(curves(1, 5, noise=2))]
    paths_b = [write_csv(tmp_path / f'b{i}.csv', STEPS, c) for i, c in enumerate(curves(2, 5, shift, noise=2))]
    text = compare.compare(paths_a, paths_b, ['TF', 'PyTorch'], out=str(tmp_path / 'out' / 'cmp'), margin=0.1)
    rows = [line for line in text.splitlines() if line.startswith('| ') and line[2].isdigit()]
    assert [int(row.split('|')[1]) for row in rows] == list(STEPS)  # one row per evaluation point
    summary = {line.split('|')[1].strip(): line for line in text.splitlines()
               if line.startswith(('| final', '| AUC'))}
    assert set(summary) == {'final return', 'AUC (mean return)'}
    assert all(expected in line for line in summary.values())
    assert (tmp_path / 'out' / 'cmp.md').read_text().endswith(text)
    with open(tmp_path / 'out' / 'cmp.png', 'rb') as file:
        assert file.read(8) == b'\x89PNG\r\n\x1a\n'


def test_command_line(tmp_path, capsys):
    for i, c in enumerate(curves(3, 2)):
        write_npz(tmp_path / 'rews' / f'tf-s{i}' / 'Hopper-v2.npz', STEPS, c)
        write_npz(tmp_path / 'rews' / f'torch-s{i}' / 'Hopper-v2.npz', STEPS, c + 1.0)
    compare.main(['--a', str(tmp_path / 'rews' / 'tf-s*' / 'Hopper-v2.npz'),
                  '--b', str(tmp_path / 'rews' / 'torch-s*' / 'Hopper-v2.npz'), '--labels', 'TF', 'PyTorch'])
    out = capsys.readouterr().out
    assert 'TF = 2' in out and 'PyTorch = 2' in out and '| 10000 |' in out
    with pytest.raises(SystemExit) as exit_info:
        compare.main(['--a', str(tmp_path / 'missing*.npz'), '--b', str(tmp_path / 'rews' / '*' / '*.npz')])
    assert exit_info.value.code == 2 and capsys.readouterr().err.startswith('error: no log matches')
    sets = ['--a', str(tmp_path / 'rews' / 'tf-s*' / 'Hopper-v2.npz'), '--b', str(tmp_path / 'rews' / 'torch-s*' / 'Hopper-v2.npz')]
    compare.main([*sets, '--out', str(tmp_path / 'cmp.png')])  # a file name given for the prefix
    assert sorted(os.listdir(tmp_path)) == ['cmp.md', 'cmp.png', 'rews']
    for flags in (['--final', '5'], ['--final', '0'], ['--alpha', '1'], ['--margin', '-0.1']):
        with pytest.raises(SystemExit) as exit_info:
            compare.main([*sets, *flags])
        assert exit_info.value.code == 2 and '--final must be in (0, 1]' in capsys.readouterr().err


def test_run_mode_gives_both_backends_the_same_work():
    opts = argparse.Namespace(env='Hopper-v2', seeds=[0, 1], steps=6000, iterations=20, timesteps=100, prefix='cmp')
    runs = compare.train_runs(opts, ['--alg=rrd', '--basis_alg=sac'])
    assert sorted(runs) == ['cmp-tf-s0', 'cmp-tf-s1', 'cmp-torch-s0', 'cmp-torch-s1']
    for tag, flags in runs.items():
        backend, seed = tag.split('-')[1], int(tag[-1])
        assert flags[:2] == ['--alg=rrd', '--basis_alg=sac']
        assert f'--use_pytorch={backend == "torch"}' in flags and f'--seed={seed}' in flags
        assert '--cycles=3' in flags and '--iterations=20' in flags and '--timesteps=100' in flags
    opts.steps = 6500
    with pytest.raises(ValueError, match='multiple'):
        compare.train_runs(opts, [])


@pytest.mark.parametrize('flag', ['--iterations=0', '--timesteps=0', '--parallel=0', '--steps=0'])
def test_run_mode_refuses_numbers_it_cannot_use(flag, capsys):
    """Before anything starts: --iterations 0 divided by zero, --parallel 0 waited forever, --steps 0
    launched runs that could only fail."""
    with pytest.raises(SystemExit) as exit_info:
        compare.main(['--run', flag])
    assert exit_info.value.code == 2 and 'must be positive' in capsys.readouterr().err


def write_seeded(logdir, backend, seed, steps, returns, env='Hopper-v2'):
    """A run in the current layout rews/<tag>/<run>/<env>.npz with its config.json."""
    name = f'cmp-{env}-rrd-sac-{backend}-seed{seed}-20240101-120000'
    write_npz(logdir / 'rews' / 'cmp' / name / f'{env}.npz', steps, returns)
    (logdir / 'models' / name).mkdir(parents=True)
    (logdir / 'models' / name / 'config.json').write_text(json.dumps(
        {'env': env, 'alg': 'rrd', 'basis_alg': 'sac', 'seed': seed, 'use_pytorch': backend == 'torch', 'tag': 'cmp'}))
    return name


def test_left_out_evaluations_are_named_per_run():
    a = (STEPS.astype(float), STEPS / 100.0)
    b = (STEPS[:-1] + 500.0, STEPS[:-1] / 100.0)
    lines = compare.left_out([a, b], ['run-a', 'run-b'])
    assert lines == ['run-a: left out 2 of 10 evaluations (steps 1000 and 10000), outside '
                     '1500..9500, the range every run covers']


def test_paired_statistics():
    d = np.array([1.0, -0.5, 0.8, 0.2, -0.3, 0.6])
    assert compare.paired_tost(d, margin=5.0) < 0.01
    assert compare.paired_tost(d, margin=0.1) > 0.05
    expected = max(stats.ttest_1samp(d, -2.0, alternative='greater').pvalue,
                   stats.ttest_1samp(d, 2.0, alternative='less').pvalue)
    assert compare.paired_tost(d, 2.0) == pytest.approx(expected)
    assert compare.paired_tost(np.full(4, 0.5), margin=1.0) == 0.0   # identical offsets inside the margin
    assert compare.paired_tost(np.full(4, 2.0), margin=1.0) == 1.0
    assert compare.wilcoxon(d) == pytest.approx(stats.wilcoxon(d).pvalue)
    assert compare.wilcoxon(np.zeros(5)) == 1.0
    assert np.isnan(compare.wilcoxon(d[:1])) and np.isnan(compare.paired_tost(d[:1], 1.0))


def test_pairing_by_seed(tmp_path):
    def run(seed):
        return runs.Run(STEPS, STEPS, {'seed': seed})
    pairs, note = compare.pair_by_seed([run(2), run(0), run(1)], [run(0), run(1), run(5)], ['TF', 'PyTorch'])
    assert pairs == [(1, 0), (2, 1)] and 'seeds 0, 1' in note and 'TF 2; PyTorch 5' in note
    assert compare.pair_by_seed([run(0), run(1)], [run(0), run(None)], ['a', 'b']) == \
        ([], 'not paired by seed: the seed of a run of b is unknown')
    assert compare.pair_by_seed([run(0), run(0)], [run(0), run(1)], ['a', 'b'])[0] == []
    assert compare.pair_by_seed([run(0), run(1)], [run(1), run(2)], ['a', 'b'])[0] == []


def test_paired_report_on_known_differences(tmp_path):
    """b = a + a known offset per seed: the paired columns are exactly those offsets, while the
    seeds' spread (300) hides them from the unpaired tests."""
    offsets = {0: 1.0, 1: -2.0, 2: 3.0, 3: 0.5, 4: -1.5}
    for seed, offset in offsets.items():
        base = 100 + 30 * np.log1p(STEPS / 1000) + 300.0 * seed
        write_seeded(tmp_path, 'tf', seed, STEPS, base)
        write_seeded(tmp_path, 'torch', seed, STEPS, base + offset)
    text = compare.compare([str(tmp_path / 'rews' / 'cmp' / '*-tf-*')], [str(tmp_path / 'rews' / 'cmp' / '*-torch-*')],
                           ['TF', 'PyTorch'], margin=0.01)
    assert 'paired by seed: 5 pairs (seeds 0, 1, 2, 3, 4)' in text
    rows = [line.split('|') for line in text.splitlines() if line.startswith('| ') and line[2].isdigit()]
    assert len(rows) == STEPS.size
    assert all(float(row[6]) == pytest.approx(np.median(np.abs(list(offsets.values())))) for row in rows)
    paired = {line.split('|')[1].strip(): line.split('|') for line in text.splitlines()
              if line.startswith(('| final', '| AUC')) and line.count('|') == 7}
    d = np.array(list(offsets.values()))
    for row in paired.values():
        assert row[2].strip() == f'{d.mean():.1f} ±     {d.std(ddof=1):.1f}'
        assert float(row[5]) == pytest.approx(stats.wilcoxon(d).pvalue, abs=1e-3)
        assert 'equivalent within the margin' in row[6]      # paired: |d| ~ 2 against a margin of ~17
    unpaired = [line for line in text.splitlines() if line.startswith('| final') and line.count('|') == 8]
    assert 'inconclusive' in unpaired[0]                     # unpaired: the seeds' spread hides it


def test_original_release_against_this_repo(tmp_path, capsys):
    """Old TF1 runs (info rows, evaluated more often and longer) against this repo's runs: compared
    on the common range, with what was left out named."""
    old_steps = np.arange(1, 25) * 500
    for seed in (0, 1):
        path = tmp_path / 'tf1' / f'rrd-sac-seed{seed}' / 'Hopper-v2.npz'
        path.parent.mkdir(parents=True)
        np.savez(path, info=np.stack([old_steps, old_steps / 10.0 + seed], 1).astype(np.float64))
        write_seeded(tmp_path / 'log', 'torch', seed, STEPS, STEPS / 10.0 + seed)
    compare.main(['--a', str(tmp_path / 'tf1'), '--b', str(tmp_path / 'log'), '--labels', 'TF 1.12', 'PyTorch',
                  '--out', str(tmp_path / 'cmp')])
    out = capsys.readouterr().out
    assert 'left out 5 of 24 evaluations (steps 500 and 10500..12000), outside 1000..10000' in out
    assert "not paired by seed: the original release's runs draw other random streams" in out
    rows = [line.split('|') for line in out.splitlines() if line.startswith('| ') and line[2].isdigit()]
    assert [int(row[1]) for row in rows] == list(range(1000, 10001, 500))  # set a's steps in the common range
    assert all(float(row[4]) == 0.0 and len(row) == 7 for row in rows)  # identical curves, no paired column
    assert (tmp_path / 'cmp.png').exists()


def test_non_finite_returns_are_refused(tmp_path):
    """A NaN evaluation made every summary nan and the verdict 'inconclusive'."""
    good = [write_npz(tmp_path / f'g{i}' / 'Hopper-v2.npz', STEPS, c) for i, c in enumerate(curves(5, 3))]
    returns = curves(6, 1)[0]
    returns[4] = np.nan
    bad = write_npz(tmp_path / 'bad' / 'Hopper-v2.npz', STEPS, returns)
    with pytest.raises(ValueError, match=f'non-finite test returns in {bad} .*leave those runs out'):
        compare.compare([good[0], bad], good[1:], ['a', 'b'])


def test_a_set_of_several_envs_is_refused(tmp_path, capsys):
    write_seeded(tmp_path, 'tf', 0, STEPS, STEPS / 10.0)
    write_seeded(tmp_path, 'tf', 1, STEPS, STEPS / 10.0, env='Walker2d-v2')
    with pytest.raises(SystemExit):
        compare.main(['--a', str(tmp_path / 'rews'), '--b', str(tmp_path / 'rews')])
    assert re.search('several envs .*compare one env at a time', capsys.readouterr().err)


def test_ctrl_c_stops_the_runs_with_their_checkpoints(tmp_path, capsys):
    """Ctrl-C while tools/runner.py trains (compare --run, learning_check): every run checkpoints
    and stops, and one line says how to continue them, instead of a traceback."""
    import glob
    import signal
    import threading
    import time
    from tools.runner import run_parallel
    flags = ['--env=Pendulum-v1', '--alg=sac', '--use_pytorch=True', '--cuda=False', '--epochs=1', '--cycles=500',
             '--iterations=2', '--timesteps=50', '--warmup=100', '--batch_size=16', '--buffer_size=2000',
             '--test_rollouts=1', '--test_timesteps=50']
    logdir = str(tmp_path / 'log')

    def interrupt_once_both_run():
        while len(glob.glob(os.path.join(logdir, 'models', '*', 'step*'))) < 2:  # both past a checkpoint
            time.sleep(0.05)
        os.kill(os.getpid(), signal.SIGINT)
    threading.Thread(target=interrupt_once_both_run, daemon=True).start()
    with pytest.raises(SystemExit) as exit_info:
        run_parallel({'a': [*flags, '--seed=0'], 'b': [*flags, '--seed=1']}, logdir, 2)
    assert exit_info.value.code == 130
    assert 'stopped; each run kept its checkpoint: continue one with python train.py --resume' in capsys.readouterr().err
    statuses = [json.load(open(path))['status'] for path in glob.glob(os.path.join(logdir, 'models', '*', 'status.json'))]
    assert statuses == ['interrupted', 'interrupted']


def test_learning_check_refuses_steps_it_would_round(capsys):
    """tools/learning_check.py trains in cycles of --eval_every steps, iterations of 100: a value
    that does not divide was rounded down (1000 steps every 150 ran 600 steps, every 100)."""
    from tools import learning_check
    for flags in (['--eval_every', '150'], ['--eval_every', '0'], ['--steps', '1050', '--eval_every', '100']):
        with pytest.raises(SystemExit) as exit_info:
            learning_check.main(['--preset', 'cartpole', '--steps', '1000', *flags, '--summary-only'])
        assert exit_info.value.code == 2 and 'must be a positive multiple of 100' in capsys.readouterr().err
    opts = argparse.Namespace(steps=1000, eval_every=200, test_rollouts=1)
    flags = learning_check.run_flags(learning_check.PRESETS['cartpole'], 'rrd-dqn', 0, opts)
    assert '--cycles=5' in flags and '--iterations=2' in flags and '--timesteps=100' in flags
