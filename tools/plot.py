"""Plots of training runs: learning curves, aggregates across envs and seeds, proxy-reward traces.

Reads every log format of tools/runs.py (this repo's npz and CSV, the original TF1 release's npz)
from files, folders (searched recursively; a whole `log/` works) or glob patterns.

    python tools/plot.py log/ --group alg backend --out curves.png
    python tools/plot.py curves 'log/rews/*/*/Hopper-v2.npz' old_tf1/Hopper-v2.npz \\
        --labels PyTorch 'TF 1.12' --smooth 3 --band std --out hopper.pdf
    python tools/plot.py aggregate log/ --norm Hopper-v2=0,3500 Walker2d-v2=0,4500 --out agg.png
    python tools/plot.py aggregate log/ --reference 'log/rews/sac-*/*/*.npz' --group alg
    python tools/plot.py proxy ...          (see `python tools/plot.py proxy -h`)

`curves` (the default subcommand): one panel per env, x in env steps, one line per group of runs
(`--group`, any of tag alg backend env label; `label` is set per pattern by `--labels`): the mean
across the group's runs with a 95% percentile-bootstrap confidence band of that mean
(`--band ci`, the default), the sample std across runs (`--band std`, as the RRD paper shaded),
or none. `--smooth k` first replaces each evaluation by the mean of the run's last k. Runs of
one group evaluated at different steps are interpolated onto the union of their evaluation
steps, each only within its own step range, so the mean at a step is over the runs that reached
it; where fewer than all runs of a group contribute the line is dashed, and a note says which
runs cover less.

`aggregate` (Agarwal et al. 2021, "Deep RL at the Edge of the Statistical Precipice"; needs
rliable): each run scores the mean test return over its last `--last` fraction of evaluations,
normalised per env to (score - min) / (max - min), with min/max from `--norm ENV=MIN,MAX ...`
(or a JSON file {"ENV": [MIN, MAX]}) or from `--reference` runs: min = their mean return at the
first evaluation (the untrained policy), max = their mean score (the same last-fraction mean);
`--norm` wins for the envs it names. Reported per group: IQM and mean of the normalised scores
with 95% stratified-bootstrap CIs, the performance profile (fraction of runs above each
normalised score tau) and the probability of improvement P(X > Y) for every pair, as a
markdown table (stdout and `<out>.md`) and a figure (`<out>`).

`proxy`: the learned proxy reward and the true per-step reward along one episode of a trained
RRD agent, from a checkpoint (tools/proxy_trace.py).
"""
import argparse
import json
import math
import os
import sys
import warnings

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from arguments import ArgumentParser, fail  # noqa: E402
from tools.runs import find_runs  # noqa: E402

GROUP_KEYS = ('tag', 'alg', 'backend', 'env', 'seed', 'run', 'label')
FORMATS = ('.png', '.pdf', '.svg')
COMMANDS = ('curves', 'aggregate', 'proxy')
EXTRA = 'pip install -r requirements-extra.txt'


# ---- curves --------------------------------------------------------------------------------------
def smooth(returns, k):
    """Each evaluation replaced by the mean of the run's last k (fewer at the start)."""
    if k <= 1:
        return returns
    sums = np.cumsum(np.insert(returns, 0, 0.0))
    counts = np.minimum(np.arange(1, len(returns) + 1), k)
    return (sums[1:] - sums[np.arange(1, len(returns) + 1) - counts]) / counts


def on_union_grid(curves):
    """[(steps, returns)] -> (union of the steps, [runs, points] returns): each run interpolated
    only within its own step range, NaN outside it."""
    grid = np.unique(np.concatenate([steps for steps, _ in curves]))
    values = np.full((len(curves), grid.size), np.nan)
    for row, (steps, returns) in zip(values, curves):
        inside = (grid >= steps[0]) & (grid <= steps[-1])
        row[inside] = np.interp(grid[inside], steps, returns)
    return grid, values


def bootstrap_ci(values, reps, rng, level=0.95):
    """Percentile-bootstrap CI of the mean across runs (rows) at each point (column), each
    point over the runs that have a value there."""
    low, high = np.full(values.shape[1], np.nan), np.full(values.shape[1], np.nan)
    valid = ~np.isnan(values)
    for mask in np.unique(valid.T, axis=0):  # columns sharing one set of contributing runs
        if not mask.any():
            continue
        columns = (valid.T == mask).all(axis=1)
        sample = values[mask][:, columns]
        draws = rng.integers(0, len(sample), size=(reps, len(sample)))
        means = sample[draws].mean(axis=1)
        low[columns], high[columns] = np.percentile(means, [50 * (1 - level), 50 * (1 + level)], axis=0)
    return low, high


def curve_band(values, band, reps, rng):
    """(mean, lower, upper) across runs at each point; the band is `ci`, `std` or `none`."""
    counts = np.sum(~np.isnan(values), axis=0)
    mean = np.nanmean(values, axis=0)
    if band == 'ci':
        low, high = bootstrap_ci(values, reps, rng)
    elif band == 'std':
        sq = np.nansum((values - mean) ** 2, axis=0)
        std = np.sqrt(np.divide(sq, counts - 1, out=np.zeros_like(sq), where=counts > 1))
        low, high = mean - std, mean + std
    else:
        low = high = mean
    return mean, low, high


def group_label(run, keys):
    return ' '.join(str(run[key]) for key in keys)


def grouped(runs, keys):
    """{env: {group label: [runs]}} in sorted order."""
    table = {}
    for run in runs:
        table.setdefault(run['env'], {}).setdefault(group_label(run, keys), []).append(run)
    return {env: dict(sorted(groups.items())) for env, groups in sorted(table.items())}


def coverage_notes(env, label, group, grid):
    """Lines naming the runs of a group that cover less than the group's step range."""
    return [f'note: {env} / {label}: {run["run"]} has evaluations only at steps {run.steps[0]:g}..'
            f'{run.steps[-1]:g} of {grid[0]:g}..{grid[-1]:g}; the mean outside its range is over '
            f'the other runs (dashed line)'
            for run in group if run.steps[0] > grid[0] or run.steps[-1] < grid[-1]]


def partial_coverage(mean, full):
    """`mean` where not every run contributes (NaN elsewhere), extended by one point into the
    fully covered stretches so that the dashed and solid pieces join."""
    partial = np.where(full, np.nan, mean)
    starts = np.flatnonzero(full[1:] & ~full[:-1]) + 1   # full again after a partial stretch
    ends = np.flatnonzero(full[:-1] & ~full[1:])         # full before a partial stretch
    partial[starts], partial[ends] = mean[starts], mean[ends]
    return partial


def plot_curves(runs, keys, band='ci', smoothing=1, reps=2000, seed=0, out='curves.png', title=None,
                note=print):
    """Draw the learning curves; returns {env: {group: (grid, mean, low, high, runs)}}."""
    plt = pyplot()
    rng = np.random.default_rng(seed)
    panels = grouped(runs, keys)
    labels = sorted({label for groups in panels.values() for label in groups})
    colors = {label: f'C{i % 10}' for i, label in enumerate(labels)}
    cols = min(3, len(panels))
    rows = math.ceil(len(panels) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, 3.8 * rows), squeeze=False)
    drawn = {}
    for ax, (env, groups) in zip(axes.flat, panels.items()):
        for label, group in groups.items():
            grid, values = on_union_grid([(run.steps, smooth(run.returns, smoothing)) for run in group])
            mean, low, high = curve_band(values, band, reps, rng)
            drawn.setdefault(env, {})[label] = (grid, mean, low, high, group)
            for line in coverage_notes(env, label, group, grid):
                note(line)
            full = np.all(~np.isnan(values), axis=0)
            ax.plot(grid, np.where(full, mean, np.nan), color=colors[label], linewidth=1.8,
                    marker='o' if grid.size == 1 else None, label=f'{label} (n={len(group)})')
            ax.plot(grid, partial_coverage(mean, full), color=colors[label], linewidth=1.4, linestyle='--')
            if band != 'none':
                ax.fill_between(grid, low, high, color=colors[label], alpha=0.2, linewidth=0)
        ax.set_title(env, fontsize=10)
        ax.set_xlabel('environment steps')
        ax.set_ylabel('test return')
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    for ax in axes.flat[len(panels):]:
        ax.set_visible(False)
    what = {'ci': 'mean, 95% bootstrap CI', 'std': 'mean ± std across runs', 'none': 'mean'}[band]
    fig.suptitle(title or f'{what}' + (f'; smoothed over the last {smoothing} evaluations' if smoothing > 1 else ''),
                 fontsize=10)
    fig.tight_layout()
    save(fig, out)
    return drawn


# ---- aggregate -----------------------------------------------------------------------------------
def final_score(run, fraction):
    """The mean test return over the run's last `fraction` of evaluations (at least one)."""
    last = max(1, int(round(fraction * run.returns.size)))
    return float(run.returns[-last:].mean())


def normalised(run, bounds, fraction):
    low, high = bounds
    return (final_score(run, fraction) - low) / (high - low)


def parse_norm(items):
    """{env: (min, max)} from 'ENV=MIN,MAX' items or one JSON file {"ENV": [MIN, MAX]}."""
    if len(items) == 1 and items[0].endswith('.json'):
        with open(items[0]) as file:
            try:
                table = json.load(file)
            except ValueError as error:
                raise ValueError(f'--norm {items[0]} is not JSON ({error})') from None
        expected = f'--norm {items[0]}: expected {{"ENV": [MIN, MAX], ...}}'
        if not isinstance(table, dict):
            raise ValueError(f'{expected}, not {type(table).__name__} {table!r}')
        return {env: bounds_pair(bounds, f'{expected}; {env!r} has {bounds!r}') for env, bounds in table.items()}
    norms = {}
    for item in items:
        env, _, bounds = item.partition('=')
        norms[env] = bounds_pair(bounds.split(','), f'--norm {item!r}: expected ENV=MIN,MAX (e.g. Hopper-v2=0,3500) '
                                                    f'or a .json file')
    return norms


def bounds_pair(bounds, error):
    """(min, max) as floats from a list of two numbers, else ValueError(`error`)."""
    if isinstance(bounds, list) and len(bounds) == 2:
        try:
            return float(bounds[0]), float(bounds[1])
        except (TypeError, ValueError):
            pass
    raise ValueError(error)


def reference_norms(runs, fraction):
    """{env: (min, max)}: the reference runs' mean first-evaluation return and mean score."""
    by_env = {}
    for run in runs:
        by_env.setdefault(run['env'], []).append(run)
    return {env: (float(np.mean([run.returns[0] for run in group])),
                  float(np.mean([final_score(run, fraction) for run in group])))
            for env, group in by_env.items()}


def score_matrices(runs, keys, norms, fraction, note=print):
    """{group: [runs, envs] normalised scores} over the envs every group has, and those envs.

    rliable needs as many runs per env within a group: extra runs (the last by seed) are left
    out with a note."""
    panels = grouped(runs, keys)
    missing = sorted(env for env in panels if env not in norms)
    if missing:
        raise ValueError(f'no normalisation for {", ".join(missing)}: '
                         'give --norm ENV=MIN,MAX or --reference runs of it')
    for env in panels:
        if norms[env][1] == norms[env][0]:
            raise ValueError(f'normalisation of {env} has min = max = {norms[env][0]:g}: give distinct bounds')
    labels = sorted({label for groups in panels.values() for label in groups})
    envs = [env for env, groups in panels.items() if set(groups) == set(labels)]
    for env in sorted(set(panels) - set(envs)):
        note(f'note: left out {env}: only {", ".join(panels[env])} ran it, not every group')
    if not envs:
        raise ValueError('no env was run by every group: aggregate needs the same envs in each group')
    matrices = {}
    for label in labels:
        columns = [sorted(panels[env][label], key=lambda run: (run['seed'] is None, run['seed'] or 0, run.path))
                   for env in envs]
        n = min(len(column) for column in columns)
        for env, column in zip(envs, columns):
            for run in column[n:]:
                note(f'note: {label}: left out {run["run"]} ({env}): rliable needs {n} run(s) per env in each group')
        matrices[label] = np.array([[normalised(column[i], norms[env], fraction) for env, column in zip(envs, columns)]
                                    for i in range(n)])
    return matrices, envs


def import_rliable():
    try:
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            from rliable import library, metrics
    except Exception as error:  # missing, or broken by pandas 3 (its `arch` dependency)
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ValueError(f'aggregate needs rliable with pandas<3 ({reason}): {EXTRA}') from None
    return library, metrics


def aggregate_stats(matrices, reps=2000, seed=0):
    """rliable's estimates: {'IQM'|'mean': {group: (point, low, high)}}, the performance
    profiles (taus, {group: (profile, low, high)}) and {(x, y): (P(X > Y), low, high)}."""
    library, metrics = import_rliable()
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', FutureWarning)  # arch's notice about RandomState
        points, intervals = library.get_interval_estimates(
            matrices, lambda scores: np.array([metrics.aggregate_iqm(scores), metrics.aggregate_mean(scores)]),
            reps=reps, random_state=np.random.RandomState(seed))
        everything = np.concatenate([m.ravel() for m in matrices.values()])
        taus = np.linspace(min(0.0, everything.min()), max(1.0, everything.max()), 101)
        profiles, profile_cis = library.get_interval_estimates(
            matrices, lambda scores: library.score_distributions(scores, taus),
            reps=reps, random_state=np.random.RandomState(seed))
        labels = list(matrices)
        pairs = {(x, y): (matrices[x], matrices[y]) for i, x in enumerate(labels) for y in labels[i + 1:]}
        improvement = {}
        if pairs:
            p_points, p_intervals = library.get_interval_estimates(
                {f'{x}\0{y}': scores for (x, y), scores in pairs.items()}, metrics.probability_of_improvement,
                reps=reps, random_state=np.random.RandomState(seed))
            improvement = {tuple(key.split('\0')): (float(p_points[key]), *map(float, np.ravel(p_intervals[key])))
                           for key in p_points}
    estimates = {name: {label: (float(points[label][i]), float(intervals[label][0][i]), float(intervals[label][1][i]))
                        for label in labels} for i, name in enumerate(('IQM', 'mean'))}
    curves = {label: (profiles[label], profile_cis[label][0], profile_cis[label][1]) for label in labels}
    return estimates, (taus, curves), improvement


def aggregate_table(estimates, improvement, matrices, envs, norms, fraction, sources):
    """The markdown report."""
    lines = [f'Score per run: mean test return over its last {fraction:.0%} of evaluations, normalised per env '
             f'to (score - min) / (max - min); 95% stratified-bootstrap CIs (rliable).', '',
             '| env | min | max | from |', '|---|---:|---:|---|']
    lines += [f'| {env} | {norms[env][0]:.1f} | {norms[env][1]:.1f} | {sources[env]} |' for env in envs]
    lines += ['', '| group | runs × envs | IQM [95% CI] | mean [95% CI] |', '|---|---:|---:|---:|']
    for label, matrix in matrices.items():
        cells = [f'{point:.3f} [{low:.3f}, {high:.3f}]' for point, low, high in
                 (estimates['IQM'][label], estimates['mean'][label])]
        lines.append(f'| {label} | {matrix.shape[0]} × {matrix.shape[1]} | {cells[0]} | {cells[1]} |')
    if improvement:
        lines += ['', '| X | Y | P(X > Y) [95% CI] |', '|---|---|---:|']
        lines += [f'| {x} | {y} | {p:.3f} [{low:.3f}, {high:.3f}] |' for (x, y), (p, low, high) in improvement.items()]
    return '\n'.join(lines) + '\n'


def interval(ax, y, estimate, color):
    """A point estimate with its CI as a horizontal error bar at height y."""
    point, low, high = estimate
    ax.errorbar(point, y, xerr=[[point - low], [high - point]], fmt='o', color=color, capsize=4, linewidth=2)


def plot_aggregate(out, estimates, profiles, improvement):
    plt = pyplot()
    labels = list(next(iter(estimates.values())))
    colors = {label: f'C{i % 10}' for i, label in enumerate(labels)}
    panels = 3 + bool(improvement)
    fig, axes = plt.subplots(1, panels, figsize=(4.2 * panels, 0.5 * len(labels) + 2.8))
    for ax, (name, values) in zip(axes, estimates.items()):
        for y, label in enumerate(labels):
            interval(ax, y, values[label], colors[label])
        ax.set_yticks(range(len(labels)), labels if ax is axes[0] else [''] * len(labels))
        ax.invert_yaxis()
        ax.set_title(name, fontsize=10)
        ax.set_xlabel('normalised score')
        ax.grid(alpha=0.3, axis='x')
    taus, curves = profiles
    for label, (profile, low, high) in curves.items():
        axes[2].plot(taus, profile, color=colors[label], label=label)
        axes[2].fill_between(taus, low, high, color=colors[label], alpha=0.2, linewidth=0)
    axes[2].set_xlabel(r'normalised score $\tau$')
    axes[2].set_ylabel(r'fraction of runs with score $> \tau$')
    axes[2].set_title('performance profile', fontsize=10)
    axes[2].grid(alpha=0.3)
    axes[2].legend(fontsize=8)
    if improvement:
        ax = axes[3]
        for y, ((x_label, _), estimate) in enumerate(improvement.items()):
            interval(ax, y, estimate, colors[x_label])
        ax.set_yticks(range(len(improvement)), [f'{x} > {y}' for x, y in improvement])
        ax.invert_yaxis()
        ax.set_xlim(-0.02, 1.02)
        ax.axvline(0.5, color='grey', linestyle=':')
        ax.set_xlabel('P(X > Y)')
        ax.set_title('probability of improvement', fontsize=10)
    fig.tight_layout()
    save(fig, out)


def aggregate(runs, keys, norms, sources, fraction=0.1, reps=2000, seed=0, out='aggregate.png', note=print):
    """Compute, print and draw the aggregate; returns the markdown table."""
    matrices, envs = score_matrices(runs, keys, norms, fraction, note)
    estimates, profiles, improvement = aggregate_stats(matrices, reps, seed)
    text = aggregate_table(estimates, improvement, matrices, envs, norms, fraction, sources)
    print(text)
    make_parent(out)
    with open(os.path.splitext(out)[0] + '.md', 'w') as file:
        file.write(text)
    plot_aggregate(out, estimates, profiles, improvement)
    return text


# ---- shared --------------------------------------------------------------------------------------
def pyplot():
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    return plt


def output_path(out, default):
    """`out` with a known extension (PNG when it has none); its folder is created when it is written,
    so a refused input leaves no folder behind."""
    out = out or default
    ext = os.path.splitext(out)[1].lower()
    if not ext:
        out += '.png'
    elif ext not in FORMATS:
        raise ValueError(f'--out {out}: use a .png, .pdf or .svg file')
    return out


def make_parent(path):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)


def save(fig, out):
    make_parent(out)
    fig.savefig(out, dpi=130)
    pyplot().close(fig)
    print(f'wrote {out}')


def load(opts):
    """The runs of the positional patterns, each pattern's runs labelled by `--labels`."""
    if not opts.runs:
        raise ValueError('give the runs to plot: log files, folders or glob patterns (e.g. log/)')
    if opts.labels and len(opts.labels) != len(opts.runs):
        raise ValueError(f'--labels gives {len(opts.labels)} label(s) for {len(opts.runs)} pattern(s): '
                         'give one per pattern')
    keys = opts.group or (['label'] if opts.labels else ['alg', 'backend'])
    unknown = [key for key in keys if key not in GROUP_KEYS]
    if unknown:
        raise ValueError(f'unknown --group key {unknown[0]!r}: use any of {", ".join(GROUP_KEYS)}')
    if opts.reps < 1:
        raise ValueError(f'--reps {opts.reps}: give the number of bootstrap resamples, at least 1')
    labels = [{'label': label} for label in opts.labels or opts.runs]
    return find_runs(opts.runs, per_pattern=labels), keys


def add_run_arguments(parser):
    parser.add_argument('runs', nargs='*', help='log files (npz/CSV), folders or glob patterns')
    parser.add_argument('--labels', nargs='+', help='one label per pattern (the `label` group key; '
                        'the default grouping when given)')
    parser.add_argument('--group', nargs='+', metavar='KEY',
                        help=f'group runs by these keys (any of {", ".join(GROUP_KEYS)}; default: alg backend)')
    parser.add_argument('--seed', type=int, default=0, help='seed of the bootstrap resampling')
    parser.add_argument('--out', help='figure file: .png (default), .pdf or .svg')


def run_curves(opts):
    runs, keys = load(opts)
    if opts.smooth < 1:
        raise ValueError(f'--smooth {opts.smooth}: give the number of evaluations to average, at least 1')
    plot_curves(runs, keys, opts.band, opts.smooth, opts.reps, opts.seed, output_path(opts.out, 'curves.png'),
                opts.title)


def run_aggregate(opts):
    runs, keys = load(opts)
    if not 0 < opts.last <= 1:
        raise ValueError(f'--last {opts.last}: give a fraction of the evaluations in (0, 1]')
    norms, sources = {}, {}
    if opts.reference:
        norms = reference_norms(find_runs(opts.reference), opts.last)
        sources = dict.fromkeys(norms, 'reference runs: min = first evaluation, max = score')
    if opts.norm:
        given = parse_norm(opts.norm)
        norms.update(given)
        sources.update(dict.fromkeys(given, '--norm'))
    out = output_path(opts.out, 'aggregate.png')
    aggregate(runs, keys, norms, sources, opts.last, opts.reps, opts.seed, out)


def build_parser(with_proxy=False):
    parser = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest='command')
    curves = commands.add_parser('curves', help='learning curves (the default)')
    add_run_arguments(curves)
    curves.add_argument('--band', choices=('ci', 'std', 'none'), default='ci',
                        help='shading: 95%% bootstrap CI of the mean (default), std across runs, or none')
    curves.add_argument('--smooth', type=int, default=1, metavar='K', help='average over the last K evaluations')
    curves.add_argument('--reps', type=int, default=2000, help='bootstrap resamples')
    curves.add_argument('--title')
    curves.set_defaults(func=run_curves)
    agg = commands.add_parser('aggregate', help='IQM, mean, performance profiles, P(improvement) (rliable)')
    add_run_arguments(agg)
    agg.add_argument('--norm', nargs='+', metavar='ENV=MIN,MAX', help='normalisation bounds per env, or a JSON file')
    agg.add_argument('--reference', nargs='+', metavar='GLOB', help='reference runs that set the normalisation')
    agg.add_argument('--last', type=float, default=0.1, help='score = mean over this last fraction of evaluations')
    agg.add_argument('--reps', type=int, default=2000,
                     help='bootstrap resamples (rliable suggests 50000 for final numbers; slower)')
    agg.set_defaults(func=run_aggregate)
    proxy = commands.add_parser('proxy', help='proxy vs true reward along one episode (tools/proxy_trace.py)')
    if with_proxy:
        try:
            from tools import proxy_trace
        except ModuleNotFoundError as error:
            if error.name != 'tools.proxy_trace':
                raise
            raise ValueError('the proxy subcommand needs tools/proxy_trace.py, which this checkout lacks') from None
        proxy_trace.add_arguments(proxy)
        proxy.set_defaults(func=proxy_trace.main)
    return parser


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] not in (*COMMANDS, '-h', '--help'):
        argv = ['curves', *argv]
    try:
        opts = build_parser(with_proxy=argv[0] == 'proxy').parse_args(argv)
        opts.func(opts)
    except (ValueError, OSError) as error:
        fail(str(error))


if __name__ == '__main__':
    main()
