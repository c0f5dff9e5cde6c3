"""Train an agent: `python train.py --alg=rrd --basis_alg=sac --env=Ant-v2` (see --help)."""
import logging
import os
import random
import sys

import numpy as np

from algorithm import BackendError, create_agent, select_backend
from algorithm.checkpoint import CheckpointError
from algorithm.replay_buffer import create_buffer
from arguments import get_args
from envs import make_env
from learner import Learner, Tester
from utils.os_utils import Logger


def set_global_seeds(seed, backend):
    """The one seeding point: Python, numpy (buffers, exploration) and torch when it runs.
    TF agents seed their own graphs from args.seed; envs are seeded at their first reset."""
    random.seed(seed)
    np.random.seed(seed)
    if backend == 'torch':
        import torch
        torch.manual_seed(seed)


def describe_env(args, env):
    args.obs_dims, args.acts_dims, args.discrete = list(env.obs_dims), list(env.acts_dims), env.discrete


def register_columns(logger, agent, args):
    for key in ('Epoch', 'Cycle', 'Episodes', 'Steps', 'time/steps_per_sec', 'time/time_left'):
        logger.add_item(key)
    logger.add_item('charts/TestRewards')
    for key in agent.train_info:
        logger.add_item('losses/' + key)
    for key in agent.step_info:
        logger.add_item('charts/' + key)
    if args.discrete:
        logger.add_item('charts/Epsilon')


def checkpoint_path(args, logger, epoch):
    path = os.path.join(args.logdir, 'models', logger.name, f'epoch{epoch}')
    return path + '.pt' if args.backend == 'torch' else path


def run(args):
    env, test_env = make_env(args), make_env(args)
    describe_env(args, env)
    set_global_seeds(args.seed, select_backend(args))
    agent = create_agent(args)
    if args.load_model:
        agent.load_model(args.load_model)
    buffer = create_buffer(args)
    with Logger(args) as logger:
        logger.print(f'env: {args.env} ({args.env_type})  alg: {args.alg}'
                     + (f' over {args.basis_alg}' if args.alg in ('rrd', 'ircr') else ''))
        register_columns(logger, agent, args)
        learner, tester = Learner(args, env, agent, buffer, logger), Tester(args, test_env, agent, logger)
        total_cycles = args.epochs * args.cycles
        for epoch in range(args.epochs):
            for cycle in range(args.cycles):
                learner.cycle()
                steps = learner.env_steps
                tester.cycle_summary(steps)
                logger.add_dict({'Epoch': epoch, 'Cycle': cycle, 'Episodes': buffer.ep_counter, 'Steps': steps})
                logger.add_timing(steps, (epoch * args.cycles + cycle + 1) / total_cycles)
                logger.tabular(steps)
            npz = tester.epoch_summary()
            if npz:
                logger.print(f'saved test returns to {npz}')
            if args.save_model:
                path = checkpoint_path(args, logger, epoch)
                agent.save_model(path)
                logger.print(f'saved checkpoint to {path}')
    return tester


def main(argv=None):
    logging.basicConfig(level=logging.INFO, format='%(message)s')
    args = get_args(argv)
    try:
        return run(args)
    except (ValueError, MemoryError, CheckpointError, BackendError) as error:
        sys.exit(f'error: {error}')


if __name__ == '__main__':
    main()
