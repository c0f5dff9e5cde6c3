"""Command-line arguments, with the flag names and defaults of the original RRD release.

Which flags exist, and several of their defaults, depend on the environment category
(MuJoCo / Atari / classic) and on the algorithm, as in the original release. So parsing is
two-pass: a first, permissive pass reads `--env --alg --basis_alg --optimizer`; the full parser is
then built for that selection, the conditional defaults installed with `set_defaults` (so a flag
the user gives explicitly always wins), and the command line parsed strictly. `--help` is
answered by the full parser, so it lists every flag of the selected (or default) configuration.

Every bad input ends in `parser.error(...)`: usage plus one message naming the problem, exit
status 2, no traceback.
"""
import argparse
import difflib
import glob
import math
import os

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
    hint = f" (did you mean {' or '.join(close)}?)" if close else ''
    listing = ''.join(f'\n  {category}: {" ".join(names)}' for category, names in groups.items())
    return f'unknown --env {env_id!r}{hint}. Supported ids:{listing}'


def _selection_parser():
    """The first, permissive pass: only what decides which flags exist."""
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    parser.add_argument('--env', type=str, default='Ant-v2')
    parser.add_argument('--alg', type=str, default='rrd', choices=ALGS)
    parser.add_argument('--basis_alg', type=str, default=None, choices=BASIS_ALGS)
    parser.add_argument('--optimizer', type=str, default='adam', choices=('adam', 'rmsprop'))
    return parser


def _check_suitable(parser, alg, flag, env, discrete):
    if alg == 'dqn' and not discrete:
        parser.error(f'{flag} dqn needs a discrete action space, but --env {env} is continuous '
                     f'(use ddpg, td3 or sac)')
    if alg != 'dqn' and discrete:
        parser.error(f'{flag} {alg} needs a continuous action space, but --env {env} is '
                     f'discrete (use dqn)')


def _build_parser(env, category, discrete, alg, basis_alg, optimizer):
    """The full parser for one selection; conditional defaults go in through `set_defaults`."""
    atari = category == 'atari'
    learner_alg = basis_alg if alg in ('rrd', 'ircr') else alg
    parser = argparse.ArgumentParser(
        allow_abbrev=False, formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        description='Train RRD, IRCR or a basis algorithm (DQN, DDPG, TD3, SAC).',
        epilog=f'Shown: the flags for --env {env} --alg {alg}'
               + (f' --basis_alg {basis_alg}' if basis_alg else '')
               + '. Which flags exist and their defaults depend on the env category and the '
                 'algorithm: e.g. `--env Pong --help` lists the Atari and DQN flags.')

    group = parser.add_argument_group('common')
    group.add_argument('--tag', type=str, default='', help='run tag, used in log names')
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
    env_pytorch = os.environ.get('USE_PYTORCH', '').strip()
    try:
        use_pytorch = str2bool(env_pytorch) if env_pytorch else None
    except argparse.ArgumentTypeError:
        parser.error(f'environment variable USE_PYTORCH={env_pytorch!r} is not a boolean '
                     f'(accepted: true/false/yes/no/1/0)')
    _bool_flag(group, '--use_pytorch', use_pytorch,
               'PyTorch backend (True) or TensorFlow reference (False); unset: the '
               'USE_PYTORCH environment variable, else chosen automatically (None)')
    _bool_flag(group, '--cuda', None,
               'run the PyTorch backend on CUDA; None: when available')
    _bool_flag(group, '--save_model', False,
               'save a checkpoint at each epoch end under <logdir>/models/')
    group.add_argument('--load_model', type=str, default=None,
                       help='checkpoint path to start from')

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
             'RMSProp_eps', 'rews_scale')
_NON_NEGATIVE = ('warmup', 'noop', 'pi_lr', 'q_lr', 'alpha_lr', 'r_lr', 'std_act', 'q_reg',
                 'pi_t_std', 'pi_t_clip')
_UNIT_INTERVAL = ('gamma', 'polyak', 'eps_l', 'eps_r', 'test_eps', 'RMSProp_decay')


def _validate(parser, args):
    """Reject values and combinations that would fail (or silently misbehave) later."""
    for name in _POSITIVE:
        value = getattr(args, name, None)
        if value is not None and not value > 0:
            parser.error(f'--{name} must be positive, got {value}')
    for name in _NON_NEGATIVE:
        value = getattr(args, name, None)
        if value is not None and not value >= 0:
            parser.error(f'--{name} must be >= 0, got {value}')
    for name in _UNIT_INTERVAL:
        value = getattr(args, name, None)
        if value is not None and not 0 <= value <= 1:
            parser.error(f'--{name} must be in [0, 1], got {value}')
    if args.warmup > args.buffer_size:
        parser.error(f'--warmup ({args.warmup}) must not exceed --buffer_size '
                     f'({args.buffer_size}): training would never start')
    if hasattr(args, 'noop') and args.noop < args.frames:
        parser.error(f'--noop ({args.noop}) must be >= --frames ({args.frames}): the no-op '
                     f'reset fills the frame stack')
    if args.alg == 'rrd':
        if args.rrd_sample_size > args.rrd_batch_size:
            parser.error(f'--rrd_sample_size ({args.rrd_sample_size}) must not exceed '
                         f'--rrd_batch_size ({args.rrd_batch_size})')
        if args.rrd_bias_correction and args.rrd_sample_size == 1:
            parser.error('--rrd_bias_correction needs --rrd_sample_size > 1 (the sample '
                         'variance of one transition is undefined)')
    if args.cuda:
        if args.use_pytorch is False:
            parser.error('--cuda True needs the PyTorch backend, but --use_pytorch is False')
        try:
            import torch
        except ImportError:
            parser.error('--cuda True needs PyTorch, which is not installed')
        if not torch.cuda.is_available():
            parser.error('--cuda True, but CUDA is not available '
                         '(torch.cuda.is_available() is False)')
    if args.load_model is not None and not glob.glob(glob.escape(args.load_model) + '*'):
        parser.error(f'--load_model: no checkpoint found at {args.load_model!r}')


def get_args(argv=None):
    """Parse `argv` (default: sys.argv[1:]) into a Namespace; adds `env_category`, `discrete`."""
    selection, _ = _selection_parser().parse_known_args(argv)
    category = env_category(selection.env)
    if category is None:
        _selection_parser().error(_unknown_env_message(selection.env))
    discrete = env_is_discrete(selection.env, category)
    basis_alg = None
    if selection.alg in ('rrd', 'ircr'):
        basis_alg = selection.basis_alg or ('dqn' if discrete else 'sac')

    parser = _build_parser(selection.env, category, discrete, selection.alg, basis_alg,
                           selection.optimizer)
    args, extra = parser.parse_known_args(argv)
    if extra:
        parser.error(f'unrecognized arguments: {" ".join(extra)} (not flags of --env '
                     f'{selection.env} --alg {selection.alg}; see --help with those)')
    if basis_alg is None:
        _check_suitable(parser, args.alg, '--alg', args.env, discrete)
    else:
        _check_suitable(parser, args.basis_alg, f'--alg {args.alg} with --basis_alg', args.env,
                        discrete)
    _validate(parser, args)
    args.env_category = category
    args.discrete = discrete
    return args
