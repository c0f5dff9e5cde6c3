"""Command-line arguments, with the flag names and defaults of the original RRD release.

Which flags exist, and several of their defaults, depend on the environment category
(MuJoCo / Atari / classic) and on the algorithm, as in the original release. So parsing is
two-pass: a first, permissive pass reads `--env --alg --basis_alg --optimizer`; the full parser is
then built for that selection, the conditional defaults installed with `set_defaults` (so a flag
the user gives explicitly always wins), and the command line parsed strictly. `--help` is
answered by the full parser, so it lists every flag of the selected (or default) configuration.

Every bad input ends in `fail(...)`: one line `error: <problem>; <fix>` on stderr, exit status 2,
no usage block, no traceback, and nothing written yet. Checks that need the env's dimensions are
in `check_run`, which train.run calls right after building the env, before anything is written.
"""
import argparse
import difflib
import glob
import importlib.util
import math
import os
import re
import sys
import tempfile

from algorithm import BackendError, env_wants_pytorch, select_backend
from algorithm.checkpoint import CheckpointError, check_checkpoint
from algorithm.replay_buffer.storage import mem_available
from utils.os_utils import str2bool

ALGS = ('dqn', 'ddpg', 'td3', 'sac', 'ircr', 'rrd')
BASIS_ALGS = ('dqn', 'ddpg', 'td3', 'sac')
# Classic-control ids with a discrete action space (by the id's name, before '-v').
CLASSIC_DISCRETE = ('CartPole', 'Acrobot', 'MountainCar', 'LunarLander')


def env_category(env_id):
    """'mujoco' | 'atari' | 'classic', or None for an unknown id. Imports only the id lists."""
    from envs import envs_collection
    return envs_collection.get(env_id)


def env_is_discrete(env_id, category=None):
    """Whether `env_id` has a discrete action space, decided from the id without building the
    env (building Atari or MuJoCo envs is slow and needs their simulators)."""
    category = category or env_category(env_id)
    if category == 'atari':
        return True
    if category == 'classic':
        return env_id.split('-v')[0] in CLASSIC_DISCRETE
    return False


def fail(message):
    """End on a bad input: one line `error: <problem>; <fix>` on stderr and exit status 2."""
    sys.stderr.write(f'error: {message}\n')
    sys.exit(2)


class ArgumentParser(argparse.ArgumentParser):
    """argparse whose errors are one line: its usage block for this many flags buries the message.
    argparse's own messages (bad type, bad choice, missing value) get a pointer to --help."""

    def error(self, message):
        fail(message if '; ' in message else f'{message}; see --help')


def _int(text):
    """An int; also accepts integral float spellings like '1e6' (handy for buffer sizes)."""
    try:
        return int(text)
    except ValueError:
        pass
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not value.is_integer():
        raise argparse.ArgumentTypeError(f'expected an integer, got {text!r}')
    return int(value)


def _plain_name(text):
    """A run name names files inside --logdir, so it must not be (or contain) a path."""
    if text in ('.', '..') or not re.fullmatch(r'[A-Za-z0-9._+=-]*', text):
        raise argparse.ArgumentTypeError(f'{text!r} is not a plain name; use letters, digits and . _ + = - '
                                         '(it names files inside --logdir)')
    return text


def _tag(text):
    """A tag names one folder, <logdir>/rews/<tag>/, as in the original release, where tags such as
    'RRD Ant-v2' were common: any text but a path (the run name gets it with '_' for the rest)."""
    if text in ('.', '..') or re.search(r'[/\\\x00-\x1f\x7f]', text):
        raise argparse.ArgumentTypeError(f'{text!r} is not a folder name; a tag names a folder inside '
                                         '--logdir: no / or \\, no control characters, not . or ..')
    return text


def _bool_flag(group, name, default, help):
    """A boolean flag: `--flag false`, `--flag=yes`, or bare `--flag` (meaning true)."""
    group.add_argument(name, type=str2bool, nargs='?', const=True, default=default,
                       metavar='BOOL', help=help)


def _unknown_env_message(env_id):
    from envs import envs_collection
    groups = {}
    for name, category in envs_collection.items():
        groups.setdefault(category, []).append(name)
    close = difflib.get_close_matches(env_id, list(envs_collection), n=3)
    hint = f"did you mean {' or '.join(close)}? " if close else ''
    listing = ' | '.join(f'{category}: {" ".join(names)}' for category, names in groups.items())
    return f'unknown --env {env_id!r}; {hint}Supported ids: {listing}'


def _selection_parser():
    """The first, permissive pass: only what decides which flags exist."""
    parser = ArgumentParser(add_help=False, allow_abbrev=False)
    parser.add_argument('--env', type=str, default='Ant-v2')
    parser.add_argument('--alg', type=str, default='rrd', choices=ALGS)
    parser.add_argument('--basis_alg', type=str, default=None, choices=BASIS_ALGS)
    parser.add_argument('--optimizer', type=str, default='adam', choices=('adam', 'rmsprop'))
    return parser


def _check_suitable(alg, flag, env, discrete):
    if alg == 'dqn' and not discrete:
        fail(f'{flag} dqn needs a discrete action space, but --env {env} is continuous; '
             f'use ddpg, td3 or sac')
    if alg != 'dqn' and discrete:
        fail(f'{flag} {alg} needs a continuous action space, but --env {env} is discrete; use dqn')


def _build_parser(env, category, discrete, alg, basis_alg, optimizer):
    """The full parser for one selection; conditional defaults go in through `set_defaults`."""
    atari = category == 'atari'
    learner_alg = basis_alg if alg in ('rrd', 'ircr') else alg
    parser = ArgumentParser(
        allow_abbrev=False, formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        description='Train RRD, IRCR or a basis algorithm (DQN, DDPG, TD3, SAC).',
        epilog=f'Shown: the flags for --env {env} --alg {alg}'
               + (f' --basis_alg {basis_alg}' if basis_alg else '')
               + '. Which flags exist and their defaults depend on the env category and the '
                 'algorithm: e.g. `--env Pong --help` lists the Atari and DQN flags.')

    group = parser.add_argument_group('common')
    group.add_argument('--tag', type=_tag, default='', help='run tag, used in log names')
    group.add_argument('--env', type=str, default='Ant-v2', help='environment id')
    group.add_argument('--env_type', type=str, default='ep_rews', choices=('normal', 'ep_rews'),
                       help='dense rewards, or the episodic reward paid at the last step')
    group.add_argument('--alg', type=str, default='rrd', choices=ALGS, help='algorithm')
    if alg in ('rrd', 'ircr'):
        group.add_argument('--basis_alg', type=str, default=basis_alg, choices=BASIS_ALGS,
                           help='the off-policy algorithm trained on the redistributed reward '
                                '(sac for continuous, dqn for discrete envs)')
    group.add_argument('--seed', type=_int, default=0, help='random seed')
    group.add_argument('--logdir', type=str, default='log', help='root folder of all logs')
    try:
        use_pytorch = env_wants_pytorch()
    except ValueError as error:
        fail(f'environment variable {error}')
    _bool_flag(group, '--use_pytorch', use_pytorch,
               'PyTorch backend (True) or TensorFlow reference (False); unset: the '
               'USE_PYTORCH environment variable, else chosen automatically (None)')
    _bool_flag(group, '--cuda', None,
               'run the PyTorch backend on CUDA; None: when available')
    group.add_argument('--threads', type=_int, default=0,
                       help='CPU threads of the backend (torch intra-op, TF intra/inter-op); 0: all cores')
    _bool_flag(group, '--parallel_losses', True,
               'PyTorch DDPG/SAC (and RRD over them) on a CPU with 2+ threads: the critic\'s losses and '
               'backward pass run on a second thread beside the policy\'s, half the threads each; '
               'same arithmetic')
    _bool_flag(group, '--traced_update', True,
               'PyTorch on a CPU: record each update\'s losses and backward pass once as a graph of '
               'tensor operations and replay it without autograd; same numbers, checked against the '
               'eager update')
    _bool_flag(group, '--compile', False,
               'PyTorch: torch.compile the update (CUDA graphs on CUDA); slower on CPU, see bench/RESULTS.md')
    _bool_flag(group, '--amp', False, 'PyTorch: bfloat16 autocast of the networks\' forward passes')
    _bool_flag(group, '--buffer_on_device', False,
               'PyTorch: keep a copy of the replay buffer on the torch device (the GPU) and sample '
               'batches there; the host copy stays for checkpoints')
    _bool_flag(group, '--save_model', False,
               'save a checkpoint at each epoch end under <logdir>/models/')
    group.add_argument('--load_model', type=str, default=None,
                       help='checkpoint path to start from')

    group = parser.add_argument_group('runs: names, checkpoints, resuming')
    group.add_argument('--run_name', type=_plain_name, default=None,
                       help='name of the run and its files (default: <tag>-<env>-<alg>[-<basis_alg>]-'
                            '<backend>-seed<seed>-<YYYYmmdd-HHMMSS>)')
    group.add_argument('--resume', nargs='?', const='', default=None, metavar='RUN',
                       help='continue a run from its latest checkpoint, with its saved flags: RUN is '
                            'its name or its <logdir>/models/<run> folder; bare --resume picks the '
                            'newest run in --logdir matching the other flags given')
    group.add_argument('--save_freq', type=_int, default=1,
                       help='write a run checkpoint every this many cycles (also at the end and '
                            'on SIGINT/SIGTERM)')
    group.add_argument('--keep_checkpoints', type=_int, default=2,
                       help='run checkpoints kept (the newest)')
    group.add_argument('--buffer_save_freq', type=_int, default=1,
                       help='save the replay buffer with every K-th checkpoint (0: never; a resume '
                            'from a checkpoint without it refills the buffer from scratch). Cost '
                            'per save, at 1M transitions: ~100 MB on MuJoCo, ~6.7 GB on Atari')

    group = parser.add_argument_group('tracking (needs: pip install -r requirements-extra.txt)')
    _bool_flag(group, '--track', False,
               'send the flags and every TensorBoard scalar to Weights & Biases (utils/tracking.py)')
    group.add_argument('--wandb_project', type=str, default='rrd', help='W&B project of the run')
    group.add_argument('--wandb_entity', type=str, default=None,
                       help='W&B team or user; None: your default entity')

    group = parser.add_argument_group('training')
    group.add_argument('--epochs', type=_int, default=3, help='number of epochs')
    group.add_argument('--cycles', type=_int, default=100, help='cycles per epoch')
    group.add_argument('--iterations', type=_int, default=100, help='iterations per cycle')
    group.add_argument('--timesteps', type=_int, default=100, help='env steps per iteration')
    group.add_argument('--test_rollouts', type=_int, default=10, help='test episodes per cycle')
    group.add_argument('--test_timesteps', type=_int, default=1000,
                       help='episode length cap (training and tests)')
    _bool_flag(group, '--save_rews', True, 'save the test returns under <logdir>/rews/')
    group.add_argument('--buffer_size', type=_int, default=1000000,
                       help='replay buffer capacity in transitions')
    group.add_argument('--batch_size', type=_int, default=256, help='training batch size')
    group.add_argument('--warmup', type=_int, default=10000,
                       help='env steps stored before training starts')
    group.add_argument('--gamma', type=float, default=0.99, help='discount factor')
    if atari:
        parser.set_defaults(epochs=10, cycles=20, iterations=500, test_rollouts=5,
                            test_timesteps=27000, batch_size=32, warmup=30000)
        group = parser.add_argument_group('atari')
        _bool_flag(group, '--sticky', False, 'sticky actions (repeat probability 0.25)')
        group.add_argument('--noop', type=_int, default=30,
                           help='no-op actions at the start of an episode')
        group.add_argument('--frames', type=_int, default=4, help='stacked frames')
        group.add_argument('--test_eps', type=float, default=0.001,
                           help='epsilon of the epsilon-greedy tests')
        group.add_argument('--rews_scale', type=float, default=1.0,
                           help='with --env_type normal: rewards clipped to +-rews_scale')

    if learner_alg == 'dqn':
        group = parser.add_argument_group('q-learning (dqn)')
        group.add_argument('--train_batches', type=_int, default=25,
                           help='updates per iteration')
        group.add_argument('--train_target', type=_int, default=8000,
                           help='updates between target copies')
        group.add_argument('--eps_l', type=float, default=1.0, help='initial epsilon')
        group.add_argument('--eps_r', type=float, default=0.01, help='final epsilon')
        group.add_argument('--eps_decay', type=_int, default=250000,
                           help='env steps of the linear epsilon decay')
        group.add_argument('--optimizer', type=str, default='adam', choices=('adam', 'rmsprop'),
                           help='Q-network optimiser')
        if optimizer == 'adam':
            group.add_argument('--q_lr', type=float, default=6.25e-5, help='Q learning rate')
            group.add_argument('--Adam_eps', type=float, default=1.5e-4, help='Adam epsilon')
        else:
            group.add_argument('--q_lr', type=float, default=2.5e-4, help='Q learning rate')
            group.add_argument('--RMSProp_decay', type=float, default=0.95, help='RMSProp decay')
            group.add_argument('--RMSProp_eps', type=float, default=0.01, help='RMSProp epsilon')
        if not atari:
            group.add_argument('--test_eps', type=float, default=0.001,
                               help='epsilon of the epsilon-greedy tests')
        _bool_flag(group, '--obs_normalization', False, 'normalise observations')
        _bool_flag(group, '--double', False, 'double Q-learning')
        _bool_flag(group, '--dueling', False, 'dueling Q-network')
    else:
        group = parser.add_argument_group(f'actor-critic ({learner_alg})')
        group.add_argument('--train_batches', type=_int, default=100,
                           help='updates per iteration')
        group.add_argument('--train_target', type=_int, default=2,
                           help='updates between polyak target updates')
        group.add_argument('--pi_lr', type=float, default=3e-4, help='policy learning rate')
        group.add_argument('--q_lr', type=float, default=3e-4, help='critic learning rate')
        group.add_argument('--polyak', type=float, default=0.995, help='target polyak factor')
        _bool_flag(group, '--obs_normalization', False, 'normalise observations')
        _bool_flag(group, '--random_warmup', False,
                   'act uniformly at random until --warmup steps are stored (the original '
                   'release acts with the exploration policy from the first step)')
        if learner_alg in ('ddpg', 'td3'):
            group.add_argument('--std_act', type=float, default=0.1,
                               help='std of the Gaussian exploration noise')
        if learner_alg == 'ddpg':
            parser.set_defaults(obs_normalization=True, pi_lr=1e-4, q_lr=1e-3, polyak=0.999)
            group.add_argument('--q_reg', type=float, default=0.01, help='critic L2 penalty')
        if learner_alg == 'td3':
            group.add_argument('--pi_t_std', type=float, default=0.2,
                               help='std of the target policy smoothing noise')
            group.add_argument('--pi_t_clip', type=float, default=0.5,
                               help='clip of the target policy smoothing noise')
            group.add_argument('--pi_delay_freq', type=_int, default=2,
                               help='critic updates per policy update')
        if learner_alg == 'sac':
            parser.set_defaults(train_target=1)
            group.add_argument('--alpha_lr', type=float, default=3e-4,
                               help='temperature learning rate (0: fixed temperature)')
            group.add_argument('--alpha_init', type=float, default=1.0,
                               help='initial temperature')

    if alg == 'rrd':
        group = parser.add_argument_group('rrd')
        group.add_argument('--r_lr', type=float, default=3e-4, help='reward net learning rate')
        group.add_argument('--rrd_batch_size', type=_int, default=32 if atari else 256,
                           help='transitions per reward-regression batch')
        group.add_argument('--rrd_sample_size', type=_int, default=32 if atari else 64,
                           help='transitions sampled per episode (K)')
        _bool_flag(group, '--rrd_bias_correction', False,
                   'subtract the sample-variance term from the reward loss (needs K > 1)')
    if alg == 'ircr' and category == 'mujoco':
        parser.set_defaults(buffer_size=300000, batch_size=512)
        if learner_alg != 'dqn':
            parser.set_defaults(polyak=0.999)
        if learner_alg == 'sac' and env.split('-v')[0] == 'Humanoid':
            parser.set_defaults(alpha_lr=0.0, alpha_init=0.1)
    return parser


# Validation table: flag -> (test, phrase for the message). Flags a configuration lacks are skipped.
_POSITIVE = ('epochs', 'cycles', 'iterations', 'timesteps', 'test_rollouts', 'test_timesteps',
             'buffer_size', 'batch_size', 'train_batches', 'train_target', 'frames', 'eps_decay',
             'pi_delay_freq', 'rrd_batch_size', 'rrd_sample_size', 'alpha_init', 'Adam_eps',
             'RMSProp_eps', 'rews_scale', 'save_freq', 'keep_checkpoints',
             # Training starts once `warmup` steps are stored, and only finished episodes are: with
             # 0 the first update would come before any episode, from an empty buffer.
             'warmup')
_NON_NEGATIVE = ('threads', 'noop', 'pi_lr', 'q_lr', 'alpha_lr', 'r_lr', 'std_act', 'q_reg',
                 'pi_t_std', 'pi_t_clip', 'buffer_save_freq')
_UNIT_INTERVAL = ('gamma', 'polyak', 'eps_l', 'eps_r', 'test_eps', 'RMSProp_decay')
# Flags only the PyTorch agents read, which the TF backend would silently ignore. --parallel_losses
# and --traced_update are not: they are on by default and merely do not apply on TF (as on torch
# with DQN or CUDA).
_TORCH_ONLY = ('cuda', 'compile', 'amp', 'buffer_on_device')
# --threads above this many per core is a typo rather than a setting: threads beyond the cores only
# take turns on them, and a count like 100000 fails to start its threads after the logs are written.
# A few per core stay allowed (tests run two threads on one-core machines).
THREADS_PER_CORE = 4


def _check_logdir(logdir):
    """--logdir must be a folder this user can write to, or one that can be created. Probed with
    an unnamed temporary file: permission bits say nothing for root or on read-only mounts."""
    if not logdir:
        fail('--logdir is empty; pass a folder (the default is log)')
    if os.path.exists(logdir) and not os.path.isdir(logdir):
        fail(f'--logdir {logdir} is a file; pass a folder (it is created when missing)')
    existing = os.path.abspath(logdir)
    while not os.path.isdir(existing):
        if os.path.exists(existing):
            fail(f'--logdir {logdir} cannot be created: {existing} is a file; pass another folder')
        existing = os.path.dirname(existing)
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as error:
        fail(f'--logdir {logdir} is not writable (creating a file in {existing}: {error.strerror}); pass a '
             f'folder you can write to')


def _validate(args):
    """Reject values and combinations that would fail (or silently misbehave) later."""
    if args.track and importlib.util.find_spec('wandb') is None:
        fail('--track needs wandb, which is not installed; pip install -r requirements-extra.txt')
    for name, value in vars(args).items():  # inf passes every range check below
        if isinstance(value, float) and math.isinf(value):
            fail(f'--{name} must be a finite number, got {value}; pass a finite value')
    for name in _POSITIVE:
        value = getattr(args, name, None)
        if value is not None and not value > 0:
            fail(f'--{name} must be positive, got {value}; pass a value > 0')
    for name in _NON_NEGATIVE:
        value = getattr(args, name, None)
        if value is not None and not value >= 0:
            fail(f'--{name} must be >= 0, got {value}; pass a value >= 0')
    for name in _UNIT_INTERVAL:
        value = getattr(args, name, None)
        if value is not None and not 0 <= value <= 1:
            fail(f'--{name} must be in [0, 1], got {value}; pass a value in [0, 1]')
    max_threads = THREADS_PER_CORE * (os.cpu_count() or 1)
    if args.threads > max_threads:
        fail(f'--threads {args.threads} is more than {THREADS_PER_CORE} per CPU core ({os.cpu_count()} here); '
             f'pass at most {max_threads}, or 0 for all cores')
    if not 0 <= args.seed < 2**32:
        fail(f'--seed must be in [0, 2**32 - 1] (the range numpy seeds from), got {args.seed}; pass another seed')
    if args.test_timesteps > args.buffer_size:
        fail(f'--buffer_size ({args.buffer_size}) cannot hold one episode of --test_timesteps '
             f'({args.test_timesteps}) steps; raise --buffer_size or lower --test_timesteps')
    if args.warmup > args.buffer_size:
        fail(f'--warmup ({args.warmup}) must not exceed --buffer_size ({args.buffer_size}): training '
             f'would never start; lower --warmup or raise --buffer_size')
    if hasattr(args, 'noop') and args.noop < args.frames:
        fail(f'--noop ({args.noop}) must be >= --frames ({args.frames}): the no-op reset fills the '
             f'frame stack; raise --noop or lower --frames')
    if args.alg == 'rrd':
        if args.rrd_sample_size > args.rrd_batch_size:
            fail(f'--rrd_sample_size ({args.rrd_sample_size}) must not exceed --rrd_batch_size '
                 f'({args.rrd_batch_size}); lower --rrd_sample_size or raise --rrd_batch_size')
        if args.rrd_bias_correction and args.rrd_sample_size == 1:
            fail('--rrd_bias_correction needs --rrd_sample_size > 1 (the sample variance of one '
                 'transition is undefined); raise --rrd_sample_size or drop --rrd_bias_correction')
    try:
        backend = select_backend(args)
    except BackendError as error:
        fail(f'{error}; or pick the other backend with --use_pytorch')
    for name in _TORCH_ONLY:
        if getattr(args, name) and backend != 'torch':
            flag = f'--{name} True' if name == 'cuda' else f'--{name}'
            fail(f'{flag} needs the PyTorch backend, but this run would use TensorFlow; pass '
                 f'--use_pytorch True or drop {flag}')
    if args.buffer_on_device and args.alg == 'ircr':
        fail('--buffer_on_device does not support --alg ircr (its batches mix two storages); '
             'drop --buffer_on_device')
    if args.cuda:
        import torch
        if not torch.cuda.is_available():
            fail('--cuda True, but CUDA is not available (torch.cuda.is_available() is False); '
                 'use --cuda False')
    if args.load_model is not None and not glob.glob(glob.escape(args.load_model) + '*'):
        fail(f'--load_model: no checkpoint found at {args.load_model!r}; check the path')
    _check_logdir(args.logdir)


# Float32 activations per sample of one forward pass: two 256-unit layers on vectors, the Nature
# conv stack (20x20x32, 9x9x64, 7x7x64, then 512 units) on 84x84 images.
_ACTIVATIONS = {'vector': 2 * 256, 'image': 20 * 20 * 32 + 9 * 9 * 64 + 7 * 7 * 64 + 512}


def buffer_nbytes(args):
    """A lower bound on the replay buffer's memory: per transition one stored frame (an 84x84
    uint8 frame on Atari, the float32 observation otherwise), its action, reward and done; the
    storage adds a few percent of slots and checks the exact figure when it is built."""
    frame = math.prod(args.obs_dims[:-1]) if args.env_category == 'atari' else 4 * math.prod(args.obs_dims)
    action = 8 if args.discrete else 4 * math.prod(args.acts_dims)
    return args.buffer_size * (frame + action + 4 + 1)


def update_nbytes(args):
    """A lower bound on the memory of one update: its transitions in float32 (obs, obs_next,
    action, reward, done) and the activations of one network over obs and obs_next; RRD adds its
    reward-regression batch."""
    activations = _ACTIVATIONS['image' if len(args.obs_dims) == 3 else 'vector']
    per_transition = 2 * math.prod(args.obs_dims) + math.prod(args.acts_dims) + 2 + 2 * activations
    transitions = args.batch_size + (args.rrd_batch_size if args.alg == 'rrd' else 0)
    return 4 * transitions * per_transition


def check_run(args):
    """The checks that need the env's dimensions (train.describe_env), run before anything is
    written: the replay buffer and one update fit in memory (an absurd --batch_size would otherwise
    fail only after warmup, in the allocator), and --load_model is a readable checkpoint of this
    backend that fits the run."""
    buffer, update, available = buffer_nbytes(args), update_nbytes(args), mem_available()
    if available is not None and buffer + update > available:
        batch = f'--batch_size {args.batch_size}' + (f', --rrd_batch_size {args.rrd_batch_size}'
                                                      if args.alg == 'rrd' else '')
        larger = '--buffer_size' if buffer >= update else '--batch_size' + (
            ' or --rrd_batch_size' if args.alg == 'rrd' else '')
        fail(f'the replay buffer (--buffer_size {args.buffer_size}: {buffer / 2**30:.1f} GiB) and one update '
             f'({batch}: {update / 2**30:.1f} GiB) need at least {(buffer + update) / 2**30:.1f} GiB, but only '
             f'{available / 2**30:.1f} GiB are available; use a smaller {larger}')
    # A resume restores its own checkpoint and never loads --load_model (a relative path saved
    # with the run may not even resolve from where it is resumed).
    if args.load_model is not None and getattr(args, 'resume', None) is None:
        try:
            check_checkpoint(args.load_model, args, select_backend(args))
        except CheckpointError as error:
            fail(str(error))


def get_args(argv=None):
    """Parse `argv` (default: sys.argv[1:]) into a Namespace; adds `env_category`, `discrete`."""
    selection, _ = _selection_parser().parse_known_args(argv)
    category = env_category(selection.env)
    if category is None:
        fail(_unknown_env_message(selection.env))
    discrete = env_is_discrete(selection.env, category)
    basis_alg = None
    if selection.alg in ('rrd', 'ircr'):
        basis_alg = selection.basis_alg or ('dqn' if discrete else 'sac')

    parser = _build_parser(selection.env, category, discrete, selection.alg, basis_alg,
                           selection.optimizer)
    args, extra = parser.parse_known_args(argv)
    if extra:
        fail(f'unrecognized arguments: {" ".join(extra)} (not flags of --env {selection.env} --alg '
             f'{selection.alg}); see --help with those')
    if basis_alg is None:
        _check_suitable(args.alg, '--alg', args.env, discrete)
    else:
        _check_suitable(args.basis_alg, f'--alg {args.alg} with --basis_alg', args.env, discrete)
    _validate(args)
    args.env_category = category
    args.discrete = discrete
    return args
