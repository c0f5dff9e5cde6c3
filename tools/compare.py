"""Compare two sets of training runs (e.g. TensorFlow vs PyTorch) per evaluation point.

Reads every log format of tools/runs.py: this repo's npz (`<logdir>/rews/<tag>/<run>/<env>.npz`,
or the earlier `<logdir>/rews/<tag>/<env>.npz`) and CSV (`<logdir>/csv/<run>.csv`, written every
cycle, so also usable for runs stopped early), and the original TF1 release's npz (only the key
`info`, (step, return) rows), so this repo's runs can be diffed against old TF 1.12 runs. Files,
folders or glob patterns; each set holds runs of one env.

    python tools/compare.py --a 'old_tf1/rrd-s*/Hopper-v2.npz' --b 'log/rews/torch/*/Hopper-v2.npz' \\
        --labels 'TF 1.12' PyTorch --out docs/parity/rrd-sac-hopper
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
answer.

Paired by seed: when the two sets share at least two seeds (from config.json or the run names),
the runs of a shared seed are paired. A pair shares the numpy-drawn randomness of its seed (env
resets and test episodes, warm-up actions, replay sampling, DQN's epsilon-greedy choices) but not
the initial weights or the Gaussian action noise, which each framework draws itself; so the paired
tests are valid but gain little over the unpaired ones (the original release's runs draw other
random streams and are never paired). The table then adds the median |b - a| over the
pairs at each evaluation point, and the verdicts add, on the per-seed differences d = b - a of
each summary, the paired TOST (two one-sided one-sample t-tests of d against -margin and
+margin, the same margin) and the Wilcoxon signed-rank test of d (with n pairs its two-sided p
is never below 2 / 2^n).

The runs are compared on the steps of the first run of set a that lie in the step range every
run covers (others are interpolated onto them); evaluations outside that range are left out, and
the report says which, per run. The table goes to stdout and `<out>.md`, the learning curves
(mean, shaded +-std, thin lines per run) to `<out>.png`.
"""
import argparse
import os
import sys
import textwrap

import numpy as np
from scipy import stats

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from arguments import ArgumentParser, fail  # noqa: E402
from tools.runner import run_npz, run_parallel  # noqa: E402
from tools.runs import ORIGINAL, find_runs  # noqa: E402

BACKENDS = ('tf', 'torch')


# ---- aligning runs -------------------------------------------------------------------------------
def one_env(runs, label):
    """The env of a set of runs; a set mixing envs is an error."""
    envs = sorted({run['env'] for run in runs})
    if len(envs) > 1:
        raise ValueError(f'set {label} holds runs of several envs ({", ".join(envs)}): compare one env at a time')
    return envs[0]


def common_range(curves):
    """(first, last) step that every (steps, returns) curve covers."""
    return max(steps[0] for steps, _ in curves), min(steps[-1] for steps, _ in curves)


def left_out(runs, names):
    """One line per run with evaluations outside the common step range, saying which."""
    low, high = common_range(runs)
    lines = []
    for (steps, _), name in zip(runs, names):
        spans = [f'{part[0]:g}' + (f'..{part[-1]:g}' if part.size > 1 else '')
                 for part in (steps[steps < low], steps[steps > high]) if part.size]
        if spans:
            count = np.sum((steps < low) | (steps > high))
            lines.append(f'{name}: left out {count} of {steps.size} evaluations (steps {" and ".join(spans)}), '
                         f'outside {low:g}..{high:g}, the range every run covers')
    return lines


def align(runs_a, runs_b):
    """Both sets on one step grid: the first run of set a's evaluation steps, within the range
    that every run covers; returns (grid, [runs, points] array a, same for b)."""
    low, high = common_range(runs_a + runs_b)
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


def paired_tost(differences, margin):
    """Paired TOST p-value for |mean(b - a)| < margin from the per-seed differences: the larger
    of the one-sample t-tests d > -margin and d < +margin. Differences that do not vary are the
    limit of that test: 0 when inside the margin, 1 otherwise; nan for fewer than two pairs."""
    d = np.asarray(differences, np.float64)
    if len(d) < 2:
        return float('nan')
    if np.ptp(d) == 0:
        return 0.0 if abs(d[0]) < margin else 1.0
    above = stats.ttest_1samp(d, -margin, alternative='greater').pvalue
    below = stats.ttest_1samp(d, margin, alternative='less').pvalue
    return float(max(above, below))


def wilcoxon(differences):
    """Two-sided Wilcoxon signed-rank p-value of the per-seed differences (zeros dropped); 1 when
    all are zero, nan for fewer than two pairs."""
    d = np.asarray(differences, np.float64)
    if len(d) < 2:
        return float('nan')
    if not d.any():
        return 1.0
    return float(stats.wilcoxon(d).pvalue)


def pair_by_seed(runs_a, runs_b, labels):
    """([(index in a, index in b)] of the runs of each seed both sets hold, a note saying what
    was paired); no pairs when a set holds original-release runs, a seed is unknown or repeated in
    a set, or fewer than two are shared."""
    if any(run['backend'] == ORIGINAL for run in runs_a + runs_b):
        return [], "not paired by seed: the original release's runs draw other random streams than this repo's"
    seeds = [[run['seed'] for run in runs] for runs in (runs_a, runs_b)]
    for label, values in zip(labels, seeds):
        if None in values:
            return [], f'not paired by seed: the seed of a run of {label} is unknown'
        if len(set(values)) < len(values):
            return [], f'not paired by seed: {label} holds a seed more than once'
    shared = sorted(set(seeds[0]) & set(seeds[1]))
    if len(shared) < 2:
        return [], 'not paired by seed: the sets share fewer than two seeds'
    note = f'paired by seed: {len(shared)} pairs (seeds {", ".join(map(str, shared))})'
    alone = {label: sorted(set(values) - set(shared)) for label, values in zip(labels, seeds)}
    if any(alone.values()):
        note += '; seeds in one set only, left out of the paired tests: ' + '; '.join(
            f'{label} {", ".join(map(str, values))}' for label, values in alone.items() if values)
    return [(seeds[0].index(seed), seeds[1].index(seed)) for seed in shared], note


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


def report(grid, curves_a, curves_b, labels, margin_fraction, final_fraction, alpha, sources, pairs=(), notes=()):
    """The markdown report: notes, per-point table, then the verdicts (unpaired, and paired by
    seed when `pairs` holds (index in a, index in b) pairs)."""
    la, lb = labels
    last = max(1, int(round(final_fraction * len(grid))))
    paired_a, paired_b = (curves_a[[i for i, _ in pairs]], curves_b[[j for _, j in pairs]]) if pairs else (None, None)
    lines = [f'Runs: {la} = {len(curves_a)} ({", ".join(sources[0])}); '
             f'{lb} = {len(curves_b)} ({", ".join(sources[1])})', '']
    lines += [f'- {note}' for note in notes] + ([''] if notes else [])
    lines += [f'| steps | {la} mean ± std | {lb} mean ± std | {lb} − {la} | Welch p |'
              + (' paired median abs(b − a) |' if pairs else ''),
              '|---:|---:|---:|---:|---:|' + ('---:|' if pairs else '')]
    for i, step in enumerate(grid):
        a, b = curves_a[:, i], curves_b[:, i]
        row = f'| {int(step)} | {fmt(a)} | {fmt(b)} | {np.mean(b) - np.mean(a):8.1f} | {welch(a, b):.3f} |'
        if pairs:
            row += f' {np.median(np.abs(paired_b[:, i] - paired_a[:, i])):8.2f} |'
        lines.append(row)
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
    if pairs:
        lines += ['', f'Paired by seed ({len(pairs)} pairs), d = {lb} − {la} per seed; paired TOST with the same '
                      f'margin ±{margin:.1f}; with {len(pairs)} pairs the two-sided Wilcoxon p is never below '
                      f'{2 / 2 ** len(pairs):.3g}.', '',
                  '| summary | mean d ± std | median abs(d) | paired TOST p | Wilcoxon p | verdict |',
                  '|---|---:|---:|---:|---:|---|']
        paired_summary_a = summaries(grid, paired_a, final_fraction)
        paired_summary_b = summaries(grid, paired_b, final_fraction)
        for name in paired_summary_a:
            d = paired_summary_b[name] - paired_summary_a[name]
            p_diff, p_equiv = wilcoxon(d), paired_tost(d, margin)
            lines.append(f'| {name} | {fmt(d)} | {np.median(np.abs(d)):8.2f} | {p_equiv:.3f} | {p_diff:.3f} | '
                         f'{verdict(p_diff, p_equiv, alpha)} |')
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


def compare(patterns_a, patterns_b, labels, out=None, margin=0.1, final=0.1, alpha=0.05, title=None):
    """Compare the runs named by two lists of files, folders or glob patterns; returns the report."""
    runs_a, runs_b = find_runs(patterns_a), find_runs(patterns_b)
    broken = [run.path for run in runs_a + runs_b if not np.all(np.isfinite(run.returns))]
    if broken:  # every mean and test over them would be nan, under a verdict
        raise ValueError(f'non-finite test returns in {", ".join(broken)} (a diverged run?); leave those runs out')
    envs = one_env(runs_a, labels[0]), one_env(runs_b, labels[1])
    notes = [f'the sets ran different envs: {labels[0]} {envs[0]}, {labels[1]} {envs[1]}'] \
        if envs[0] != envs[1] and 'unknown' not in envs else []
    curves_a, curves_b = [(run.steps, run.returns) for run in runs_a], [(run.steps, run.returns) for run in runs_b]
    grid, values_a, values_b = align(curves_a, curves_b)
    notes += left_out(curves_a + curves_b, [run.path for run in runs_a + runs_b])
    pairs, pair_note = pair_by_seed(runs_a, runs_b, labels)
    text = report(grid, values_a, values_b, labels, margin, final, alpha,
                  ([run.path for run in runs_a], [run.path for run in runs_b]), pairs, notes + [pair_note])
    print(text)
    if out:
        os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
        with open(out + '.md', 'w') as file:
            file.write((f'# {title}\n\n' if title else '') + text)
        plot(out + '.png', grid, values_a, values_b, labels, title or f'{labels[0]} vs {labels[1]}')
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
    return [[run_npz(opts.logdir, f'{opts.prefix}-{backend}-s{seed}', opts.env)
             for seed in opts.seeds] for backend in BACKENDS]


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    train_flags = argv[argv.index('--') + 1:] if '--' in argv else []
    argv = argv[:argv.index('--')] if '--' in argv else argv
    parser = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--a', nargs='+', help='runs of set a (the reference): npz/CSV files, folders or globs')
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
    if not 0 < opts.final <= 1 or not 0 < opts.alpha < 1 or opts.margin < 0:
        parser.error('--final must be in (0, 1], --alpha in (0, 1) and --margin >= 0')
    if opts.run and min(opts.steps, opts.iterations, opts.timesteps, opts.parallel) <= 0:
        parser.error('--steps, --iterations, --timesteps and --parallel must be positive')
    if opts.out and opts.out.endswith(('.md', '.png')):  # a file name for the prefix: cmp.png -> cmp.md, cmp.png
        opts.out = os.path.splitext(opts.out)[0]
    try:
        if opts.run:
            paths_a, paths_b = run_both(opts, train_flags)
            labels = opts.labels or ['TF', 'PyTorch']
        elif opts.a and opts.b:
            paths_a, paths_b = opts.a, opts.b
            labels = opts.labels or ['a', 'b']
        else:
            parser.error('give --a and --b (logs to compare), or --run')
        compare(paths_a, paths_b, labels, opts.out, opts.margin, opts.final, opts.alpha, opts.title)
    except (ValueError, RuntimeError, OSError) as error:
        fail(str(error))


if __name__ == '__main__':
    main()
