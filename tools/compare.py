"""Compare two sets of training runs (e.g. TensorFlow vs PyTorch) per evaluation point.

Reads the test-return logs that train.py writes, from this or any earlier run:
  - `<logdir>/rews/<tag>/<env>.npz` (arrays `steps`, `rewards`), written at each epoch end;
  - `<logdir>/csv/<run>.csv` (columns `Steps`, `charts/TestRewards`), written every cycle, so
    also usable for runs that were stopped early.

    python tools/compare.py --a 'log/rews/tf-s*/Hopper-v2.npz' --b 'log/rews/torch-s*/Hopper-v2.npz' \\
        --labels TF PyTorch --out docs/parity/rrd-sac-hopper
    python tools/compare.py --run --env Hopper-v2 --seeds 0 1 --steps 60000 --out cmp -- --alg=rrd --basis_alg=sac

`--run` first trains both backends for each seed with train.py (one process per run, one
thread each, `--parallel` at a time; the same number of env steps for both, since one backend is
faster than the other), then compares their npz files.

Output: a table per evaluation point (mean +- sample std over the runs of each set, the
difference b - a, and Welch's t-test p-value), then a verdict on two summaries of each run:
  - final return: the mean over the last `--final` fraction of evaluation points;
  - AUC: the area under the learning curve divided by its step range (the mean return over
    training, in return units).
For each, Welch's t-test (scipy.stats.ttest_ind, equal_var=False) tests for a difference, and
TOST (two one-sided Welch tests) tests equivalence within +-margin, where margin = `--margin`
times the return scale of set a (the largest |mean return| over its curve). With few seeds
neither test may reach significance: the verdict then says "inconclusive", which is the honest
answer. The table goes to stdout and `<out>.md`, the learning curves (mean, shaded +-std, thin
lines per run) to `<out>.png`.

Runs whose evaluation steps differ are interpolated onto the evaluation steps of the first run
of set a, within the step range every run covers.
"""
import argparse
import csv
import glob
import os
import sys
import textwrap

import numpy as np
from scipy import stats

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from tools.runner import run_parallel  # noqa: E402

CSV_STEPS, CSV_RETURNS = 'Steps', 'charts/TestRewards'
BACKENDS = ('tf', 'torch')


# ---- reading runs --------------------------------------------------------------------------------
def read_run(path):
    """(steps, returns) of one run from its npz or CSV log."""
    if path.endswith('.npz'):
        with np.load(path) as data:
            return np.asarray(data['steps'], np.float64), np.asarray(data['rewards'], np.float64)
    if path.endswith('.csv'):
        with open(path, newline='') as file:
            rows = [row for row in csv.DictReader(file) if row.get(CSV_STEPS) and row.get(CSV_RETURNS)]
        if not rows:
            raise ValueError(f'{path} has no rows with both {CSV_STEPS!r} and {CSV_RETURNS!r}')
        return (np.array([float(row[CSV_STEPS]) for row in rows]),
                np.array([float(row[CSV_RETURNS]) for row in rows]))
    raise ValueError(f'{path}: expected a .npz or .csv log')


def expand(patterns):
    """Files named by paths or glob patterns, in sorted order; an empty match is an error."""
    paths = []
    for pattern in patterns:
        matches = sorted(glob.glob(pattern))
        if not matches:
            raise ValueError(f'no log matches {pattern!r}')
        paths += matches
    return paths


def align(runs_a, runs_b):
    """Both sets on one step grid: the first run of set a's evaluation steps, within the range
    that every run covers; returns (grid, [runs, points] array a, same for b)."""
    runs = runs_a + runs_b
    low, high = max(steps[0] for steps, _ in runs), min(steps[-1] for steps, _ in runs)
    grid = runs_a[0][0][(runs_a[0][0] >= low) & (runs_a[0][0] <= high)]
    if grid.size == 0:
        raise ValueError('the runs share no evaluation step range')

    def on_grid(group):
        return np.stack([np.interp(grid, steps, returns) for steps, returns in group])

    return grid, on_grid(runs_a), on_grid(runs_b)


# ---- statistics ----------------------------------------------------------------------------------
def summaries(grid, curves, final_fraction):
    """Per run: the final return (mean of the last evaluations) and the normalised AUC."""
    last = max(1, int(round(final_fraction * len(grid))))
    final = curves[:, -last:].mean(axis=1)
    if len(grid) > 1:
        auc = np.trapezoid(curves, grid, axis=1) / (grid[-1] - grid[0])
    else:
        auc = curves[:, 0]
    return {'final return': final, 'AUC (mean return)': auc}


def welch(a, b):
    """Welch's t-test p-value of mean(b) != mean(a); nan when a set has fewer than two runs or
    neither varies."""
    if len(a) < 2 or len(b) < 2 or (np.var(a) == 0 and np.var(b) == 0):
        return float('nan')
    return float(stats.ttest_ind(b, a, equal_var=False).pvalue)


def tost(a, b, margin):
    """TOST p-value for |mean(b) - mean(a)| < margin: the larger of the two one-sided Welch tests
    (b + margin > a, and b - margin < a); equivalence is shown when it is below alpha."""
    if len(a) < 2 or len(b) < 2 or (np.var(a) == 0 and np.var(b) == 0):
        return float('nan')
    above = stats.ttest_ind(np.asarray(b) + margin, a, equal_var=False, alternative='greater').pvalue
    below = stats.ttest_ind(np.asarray(b) - margin, a, equal_var=False, alternative='less').pvalue
    return float(max(above, below))


def verdict(p_diff, p_equiv, alpha):
    if p_equiv < alpha:
        return 'equivalent within the margin' + (' (though significantly different)' if p_diff < alpha else '')
    if p_diff < alpha:
        return 'significantly different'
    return 'inconclusive: no significant difference, equivalence not shown'


# ---- report --------------------------------------------------------------------------------------
def spread(values, axis=None):
    """The sample standard deviation across runs (0 for a single run)."""
    return np.std(values, axis=axis, ddof=1 if np.shape(values)[0] > 1 else 0)


def fmt(values):
    return f'{np.mean(values):9.1f} ± {spread(values):7.1f}'


def report(grid, curves_a, curves_b, labels, margin_fraction, final_fraction, alpha, sources):
    """The markdown report: per-point table, then the verdicts."""
    la, lb = labels
    last = max(1, int(round(final_fraction * len(grid))))
    lines = [f'Runs: {la} = {len(curves_a)} ({", ".join(sources[0])}); '
             f'{lb} = {len(curves_b)} ({", ".join(sources[1])})',
             '', f'| steps | {la} mean ± std | {lb} mean ± std | {lb} − {la} | Welch p |',
             '|---:|---:|---:|---:|---:|']
    for i, step in enumerate(grid):
        a, b = curves_a[:, i], curves_b[:, i]
        lines.append(f'| {int(step)} | {fmt(a)} | {fmt(b)} | {np.mean(b) - np.mean(a):8.1f} | {welch(a, b):.3f} |')
    scale = float(np.abs(curves_a.mean(axis=0)).max())
    margin = margin_fraction * scale
    lines += ['', f'Equivalence margin: ±{margin:.1f} = {margin_fraction:g} × {scale:.1f} (the largest |mean return| '
                  f'of {la}); α = {alpha:g}; final return = mean of the last {last} evaluation(s).', '',
              f'| summary | {la} | {lb} | {lb} − {la} | Welch p | TOST p | verdict |',
              '|---|---:|---:|---:|---:|---:|---|']
    summary_a, summary_b = summaries(grid, curves_a, final_fraction), summaries(grid, curves_b, final_fraction)
    for name in summary_a:
        a, b = summary_a[name], summary_b[name]
        p_diff, p_equiv = welch(a, b), tost(a, b, margin)
        lines.append(f'| {name} | {fmt(a)} | {fmt(b)} | {np.mean(b) - np.mean(a):8.1f} | {p_diff:.3f} | '
                     f'{p_equiv:.3f} | {verdict(p_diff, p_equiv, alpha)} |')
    return '\n'.join(lines) + '\n'


def plot(path, grid, curves_a, curves_b, labels, title):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for curves, label, color in ((curves_a, labels[0], 'tab:blue'), (curves_b, labels[1], 'tab:orange')):
        mean, std = curves.mean(axis=0), spread(curves, axis=0)
        for curve in curves:
            ax.plot(grid, curve, color=color, alpha=0.3, linewidth=0.8)
        ax.plot(grid, mean, color=color, linewidth=2, label=f'{label} (n={len(curves)})')
        ax.fill_between(grid, mean - std, mean + std, color=color, alpha=0.2)
    ax.set_xlabel('environment steps')
    ax.set_ylabel('test return')
    ax.set_title(textwrap.fill(title, 70), fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def compare(paths_a, paths_b, labels, out=None, margin=0.1, final=0.1, alpha=0.05, title=None):
    grid, curves_a, curves_b = align([read_run(p) for p in paths_a], [read_run(p) for p in paths_b])
    text = report(grid, curves_a, curves_b, labels, margin, final, alpha, (paths_a, paths_b))
    print(text)
    if out:
        os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
        with open(out + '.md', 'w') as file:
            file.write((f'# {title}\n\n' if title else '') + text)
        plot(out + '.png', grid, curves_a, curves_b, labels, title or f'{labels[0]} vs {labels[1]}')
    return text


# ---- running both backends -----------------------------------------------------------------------
def train_runs(opts, train_flags):
    """{tag: train.py flags} of the runs that --run launches, tagged <prefix>-<backend>-s<seed>."""
    per_cycle = opts.iterations * opts.timesteps
    if opts.steps % per_cycle:
        raise ValueError(f'--steps {opts.steps} is not a multiple of iterations x timesteps = {per_cycle}')
    return {f'{opts.prefix}-{backend}-s{seed}': [*train_flags, f'--env={opts.env}', f'--use_pytorch={backend == "torch"}',
                                                 f'--seed={seed}', '--epochs=1', f'--cycles={opts.steps // per_cycle}',
                                                 f'--iterations={opts.iterations}', f'--timesteps={opts.timesteps}']
            for backend in BACKENDS for seed in opts.seeds}


def run_both(opts, train_flags):
    """Train every run (tools/runner.py); returns the npz paths per backend."""
    run_parallel(train_runs(opts, train_flags), opts.logdir, opts.parallel)
    return [[os.path.join(opts.logdir, 'rews', f'{opts.prefix}-{backend}-s{seed}', f'{opts.env}.npz')
             for seed in opts.seeds] for backend in BACKENDS]


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    train_flags = argv[argv.index('--') + 1:] if '--' in argv else []
    argv = argv[:argv.index('--')] if '--' in argv else argv
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--a', nargs='+', help='runs of set a (the reference): npz/CSV paths or globs')
    parser.add_argument('--b', nargs='+', help='runs of set b')
    parser.add_argument('--labels', nargs=2, default=None,
                        help='names of the two sets (default: a b; TF PyTorch with --run)')
    parser.add_argument('--out', help='write <out>.md and <out>.png')
    parser.add_argument('--title', help='title of the plot and the markdown file')
    parser.add_argument('--margin', type=float, default=0.1,
                        help="equivalence margin, a fraction of set a's return scale")
    parser.add_argument('--final', type=float, default=0.1,
                        help='fraction of the last evaluations averaged as the final return')
    parser.add_argument('--alpha', type=float, default=0.05)
    group = parser.add_argument_group('--run: train both backends first (train.py flags go after --)')
    group.add_argument('--run', action='store_true')
    group.add_argument('--env', default='Hopper-v2')
    group.add_argument('--seeds', type=int, nargs='+', default=[0, 1])
    group.add_argument('--steps', type=int, default=60000, help='env steps per run (the same for both backends)')
    group.add_argument('--iterations', type=int, default=20, help='iterations per cycle: one evaluation per cycle')
    group.add_argument('--timesteps', type=int, default=100)
    group.add_argument('--parallel', type=int, default=2)
    group.add_argument('--prefix', default='compare', help='run tags are <prefix>-<backend>-s<seed>')
    group.add_argument('--logdir', default=os.path.join(ROOT, 'log', 'compare'))
    opts = parser.parse_args(argv)
    try:
        if opts.run:
            paths_a, paths_b = run_both(opts, train_flags)
            labels = opts.labels or ['TF', 'PyTorch']
        elif opts.a and opts.b:
            paths_a, paths_b = expand(opts.a), expand(opts.b)
            labels = opts.labels or ['a', 'b']
        else:
            parser.error('give --a and --b (logs to compare), or --run')
        compare(paths_a, paths_b, labels, opts.out, opts.margin, opts.final, opts.alpha, opts.title)
    except (ValueError, RuntimeError, OSError) as error:
        sys.exit(f'error: {error}')


if __name__ == '__main__':
    main()
