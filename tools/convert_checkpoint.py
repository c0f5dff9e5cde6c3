"""Convert a checkpoint of this repo between the TensorFlow and the PyTorch backend.

    python tools/convert_checkpoint.py --to torch SRC DST --alg rrd --basis_alg sac --env HalfCheetah-v2
    python tools/convert_checkpoint.py --to tf SRC.pt DST --alg dqn --env Pong --dueling True

Everything after SRC and DST is train.py's flags: both agents are built from them (dimensions
from the env, as in train.py), the source backend's `load_model` reads SRC, and
tools/weight_transfer.py copies the whole state (networks, targets, temperature, normaliser,
optimiser moments and step counts) into the other agent, whose `save_model` writes DST. So
training resumes from DST with `--load_model` exactly where SRC left off. A checkpoint of
another algorithm, other flags (obs_normalization, dueling, optimizer) or other dimensions is
refused with one line saying what differs.
"""
import argparse
import copy
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from algorithm import create_agent  # noqa: E402
from algorithm.checkpoint import CheckpointError  # noqa: E402
from arguments import get_args  # noqa: E402
from envs import make_env  # noqa: E402
from tools.weight_transfer import TransferError, tf_to_torch, torch_to_tf  # noqa: E402


def build_agents(train_argv):
    """(TF agent, torch agent) of one configuration, dimensions taken from the env."""
    args = get_args(list(train_argv))
    env = make_env(args)
    args.obs_dims, args.acts_dims, args.discrete = list(env.obs_dims), list(env.acts_dims), env.discrete
    agents = {}
    for backend, use_pytorch in (('tf', False), ('torch', True)):
        backend_args = copy.copy(args)
        backend_args.use_pytorch = use_pytorch
        if use_pytorch:
            backend_args.cuda = False  # conversion is a CPU job; the file loads on any device
        agents[backend] = create_agent(backend_args)
    return agents


def convert(src, dst, to, train_argv):
    if not os.path.exists(src):
        raise CheckpointError(f'no checkpoint at {src}; check the SRC path')
    if to == 'torch' and os.path.isfile(src):
        raise CheckpointError(f'{src} is a file, a torch checkpoint; to convert it to TF pass --to tf')
    if to == 'tf' and os.path.isdir(src):
        raise CheckpointError(f'{src} is a directory, a TF checkpoint; to convert it to torch pass --to torch')
    agents = build_agents(train_argv)
    source, target = agents['tf' if to == 'torch' else 'torch'], agents[to]
    source.load_model(src)
    try:
        (tf_to_torch if to == 'torch' else torch_to_tf)(source, target)
    except TransferError as error:
        raise CheckpointError(f'{src} does not fit the given flags: {error}') from None
    target.save_model(dst)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                                     usage='%(prog)s --to {torch,tf} SRC DST [train.py flags]')
    parser.add_argument('--to', required=True, choices=('torch', 'tf'), help='the backend DST is for')
    parser.add_argument('src', help='checkpoint to read: a TF directory for --to torch, a .pt file for --to tf')
    parser.add_argument('dst', help='checkpoint to write')
    parser.add_argument('train_flags', nargs=argparse.REMAINDER, help="train.py's flags of the checkpoint's run")
    opts = parser.parse_args(argv)
    try:
        convert(opts.src, opts.dst, opts.to, opts.train_flags)
    except CheckpointError as error:
        sys.exit(f'error: {error}')
    print(f'converted {opts.src} -> {opts.dst} ({opts.to})')


if __name__ == '__main__':
    main()
