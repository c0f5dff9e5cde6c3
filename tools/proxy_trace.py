"""Proxy reward vs true reward along one episode of a trained RRD agent.

    python tools/plot.py proxy --run <run name or log/models/<run>> [--out trace.png]
    python tools/proxy_trace.py --checkpoint log/models/<run>/epoch2.pt
    python tools/proxy_trace.py --checkpoint ckpt_dir -- --alg=rrd --basis_alg=sac --env=Hopper-v2

Loads the agent from a checkpoint (a torch `.pt` file or a TF checkpoint directory; a run folder
means its newest checkpoint), rolls out one deterministic test episode (env seed = run seed + 1,
as the run's first test episode; on discrete envs the rare --test_eps random actions may differ),
and draws the learned r_theta(s, a, s') and the env's true per-step reward along it (trace) and
against each other (scatter, Pearson r in the title). It prints the correlation and the
return-decomposition error |sum_t r_theta - R_ep| / T, the two measures training logs each cycle
as charts/ProxyCorr and charts/DecompError.

The agent's flags come from train.py flags given after `--`, else from the run's config.json
(found from --run, or next to the checkpoint); the checkpoint's format picks the backend.
"""
import argparse
import glob
import json
import os
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from algorithm import BackendError, create_agent  # noqa: E402
from algorithm.checkpoint import META_FILE, CheckpointError, agent_path, run_checkpoints  # noqa: E402
from arguments import ArgumentParser, fail, get_args  # noqa: E402
from envs import make_env  # noqa: E402
from learner import Tester  # noqa: E402
from learner.diagnostics import decomposition_error, pearson  # noqa: E402

CONFIG_FILE = 'config.json'
SELECTION_FLAGS = ('env', 'alg', 'basis_alg', 'optimizer')  # decide which flags exist: parsed first


def add_arguments(parser):
    parser.description, parser.formatter_class = __doc__, argparse.RawDescriptionHelpFormatter
    parser.add_argument('--run', help='a run name (under --logdir/models/) or its models/<run> folder: '
                                      'flags from its config.json, its newest checkpoint')
    parser.add_argument('--checkpoint', help='a torch .pt file, a TF checkpoint directory, or a folder of them')
    parser.add_argument('--logdir', default='log', help='where --run names are looked up')
    parser.add_argument('--out', help='figure file: .png (default proxy_trace.png), .pdf or .svg')
    parser.add_argument('train_flags', nargs='*', metavar='-- TRAIN_FLAGS',
                        help="the run's train.py flags, when it has no config.json")


# ---- agent ---------------------------------------------------------------------------------------
def checkpoint_backend(path):
    """'torch' for a file, 'tf' for a checkpoint directory."""
    if os.path.isfile(path):
        return 'torch'
    if os.path.isfile(os.path.join(path, META_FILE)):
        return 'tf'
    raise ValueError(f'{path} is neither a torch checkpoint file nor a TF checkpoint directory (with {META_FILE})')


def newest_checkpoint(folder):
    """The most recently written agent checkpoint in a run folder: a run checkpoint's agent
    (train.py's periodic ones) or an `epoch<k>` save (--save_model)."""
    candidates = [path for run_checkpoint in run_checkpoints(folder) for backend in ('torch', 'tf')
                  for path in [agent_path(run_checkpoint, backend)] if os.path.exists(path)]
    candidates += glob.glob(os.path.join(glob.escape(folder), 'epoch*'))
    if not candidates:
        raise ValueError(f'{folder} holds no checkpoint; train with --save_model=True, or give --checkpoint')
    return max(candidates, key=os.path.getmtime)


def resolve_checkpoint(path):
    """A checkpoint path from a file, a TF checkpoint directory, a run checkpoint or a run folder."""
    if not os.path.exists(path):
        raise ValueError(f'--checkpoint {path}: no such file or directory')
    if os.path.isfile(path) or os.path.isfile(os.path.join(path, META_FILE)):
        return path
    for backend in ('torch', 'tf'):  # a run checkpoint folder: its agent
        if os.path.exists(agent_path(path, backend)):
            return agent_path(path, backend)
    return newest_checkpoint(path)


def run_folder(run, logdir):
    folder = run if os.path.isdir(run) else os.path.join(logdir, 'models', run)
    if not os.path.isdir(folder):
        raise ValueError(f'--run {run}: no run folder {folder}; give a run name under --logdir {logdir} '
                         'or a models/<run> folder')
    return folder


def find_config(checkpoint):
    """config.json of the run a checkpoint belongs to: in its folder or one of the two above."""
    folder = os.path.dirname(os.path.abspath(checkpoint))
    for _ in range(3):
        if os.path.isfile(os.path.join(folder, CONFIG_FILE)):
            return os.path.join(folder, CONFIG_FILE)
        folder = os.path.dirname(folder)
    return None


def args_from_config(path):
    """The run's flags from its config.json: selection flags parsed first, the rest set on top."""
    with open(path) as file:
        config = json.load(file)
    args = get_args([f'--{key}={config[key]}' for key in SELECTION_FLAGS if config.get(key) is not None])
    for key, value in config.items():
        if hasattr(args, key):
            setattr(args, key, value)
    return args


def load_agent(opts):
    """(args, agent, checkpoint path) for the options; ValueError on any misuse."""
    if not (opts.run or opts.checkpoint):
        raise ValueError('give --run RUN or --checkpoint PATH (with the run\'s train.py flags after `--` '
                         'when it has no config.json)')
    checkpoint = resolve_checkpoint(opts.checkpoint) if opts.checkpoint else None
    config = None
    if opts.run:
        folder = run_folder(opts.run, opts.logdir)
        checkpoint = checkpoint or newest_checkpoint(folder)
        config = os.path.join(folder, CONFIG_FILE) if os.path.isfile(os.path.join(folder, CONFIG_FILE)) else None
    config = config or find_config(checkpoint)
    if opts.train_flags:
        args = get_args(opts.train_flags)
    elif config:
        args = args_from_config(config)
    else:
        raise ValueError(f'no {CONFIG_FILE} found for {checkpoint}; give the run\'s train.py flags after `--`, '
                         'e.g. -- --alg=rrd --basis_alg=sac --env=Hopper-v2')
    if args.alg != 'rrd':
        raise ValueError(f'proxy rewards need an RRD agent, but the run is --alg {args.alg}')
    args.use_pytorch = checkpoint_backend(checkpoint) == 'torch'
    args.cuda, args.load_model, args.track = None, None, False
    env = make_env(args)
    args.obs_dims, args.acts_dims, args.discrete = list(env.obs_dims), list(env.acts_dims), env.discrete
    try:
        agent = create_agent(args)
        agent.load_model(checkpoint)
    except (CheckpointError, BackendError) as error:
        raise ValueError(str(error)) from None
    return args, env, agent, checkpoint


class _Discard:
    """The tester's logger, unused here."""

    def add_dict(self, *_, **__):
        pass

    def add_record(self, *_, **__):
        pass


def trace(args, env, agent):
    """(proxy [T], true reward [T]) along the run's first test episode."""
    np.random.seed(args.seed)  # the test_eps draws of discrete agents
    tester = Tester(args, env, agent, _Discard())
    tester.rollout()
    return tester.diagnostics.episodes[0]


# ---- figure --------------------------------------------------------------------------------------
def draw(proxy, true_rewards, title, out):
    from tools.plot import pyplot, save
    plt = pyplot()
    corr = pearson(proxy, true_rewards)
    fig, (ax_trace, ax_scatter) = plt.subplots(1, 2, figsize=(12, 4), gridspec_kw={'width_ratios': [2, 1]})
    steps = np.arange(1, len(proxy) + 1)
    ax_trace.plot(steps, true_rewards, lw=0.9, label='true reward')
    ax_trace.plot(steps, proxy, lw=0.9, label=r'proxy $r_\theta(s, a, s^\prime)$')
    ax_trace.set_xlabel('step of the episode')
    ax_trace.set_ylabel('reward per step')
    ax_trace.legend(loc='best', fontsize='small')
    ax_scatter.scatter(true_rewards, proxy, s=4, alpha=0.5)
    low, high = min(proxy.min(), true_rewards.min()), max(proxy.max(), true_rewards.max())
    ax_scatter.plot([low, high], [low, high], color='grey', lw=0.8, ls='--', label='proxy = true')
    ax_scatter.set_xlabel('true reward')
    ax_scatter.set_ylabel(r'proxy $r_\theta$')
    ax_scatter.legend(loc='best', fontsize='small')
    ax_scatter.set_title(f'Pearson r = {corr:.3f}' if np.isfinite(corr)
                         else 'Pearson r undefined (constant reward)')
    fig.suptitle(title, fontsize='medium')
    fig.tight_layout()
    save(fig, out)


def main(opts):
    from tools.plot import output_path
    out = output_path(opts.out, 'proxy_trace.png')
    args, env, agent, checkpoint = load_agent(opts)
    proxy, true_rewards = trace(args, env, agent)
    corr, error = pearson(proxy, true_rewards), decomposition_error(proxy, true_rewards)
    print(f'{checkpoint}: one test episode of {args.env}, {len(proxy)} steps, return {true_rewards.sum():.2f} '
          f'(proxy sum {proxy.sum():.2f})')
    print(f'ProxyCorr (Pearson r, proxy vs true per-step reward): {corr:.4f}'
          + ('' if np.isfinite(corr) else ' (undefined: a constant reward)'))
    print(f'DecompError (|sum proxy - return| / T): {error:.4g}')
    title = (f'{os.path.relpath(checkpoint)}\n{args.env}, RRD-{args.basis_alg.upper()} '
             f'({args.backend}); return {true_rewards.sum():.1f} over {len(proxy)} steps, '
             f'decomposition error {error:.3g} per step')
    draw(proxy, true_rewards, title, out)
    return corr, error


if __name__ == '__main__':
    parser = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    try:
        main(parser.parse_args())
    except (ValueError, OSError) as error:
        fail(str(error))
