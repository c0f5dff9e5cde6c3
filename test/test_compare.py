"""tools/compare.py on synthetic npz and CSV logs in train.py's formats (project issue #4)."""
import argparse
import csv
import os

import numpy as np
import pytest

from tools import compare

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
    for path in (npz, table):
        steps, values = compare.read_run(path)
        np.testing.assert_array_equal(steps, STEPS)
        np.testing.assert_allclose(values, returns)
    with pytest.raises(ValueError, match='npz or .csv'):
        compare.read_run(str(tmp_path / 'run.txt'))


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
    with pytest.raises(SystemExit, match='no log matches'):
        compare.main(['--a', str(tmp_path / 'missing*.npz'), '--b', str(tmp_path / 'rews' / '*' / '*.npz')])


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
