"""MuJoCo locomotion/control envs through gymnasium and the `mujoco` bindings.

The original release's '-v2' ids need mujoco-py, which is unmaintained; they run as '-v5' on the
maintained bindings (the same robots and reward terms with gymnasium's fixes since: docs/algorithms.md
section 2), announced once per id and process. The
'-v4' ids run as asked; that they are out of date is said in one line of the project's logger
instead of gymnasium's DeprecationWarning (which also prints its source line).

MuJoCo's warnings go through the project's logger instead of MuJoCo's default handler, which
prints them and appends them to MUJOCO_LOG.TXT in the working directory; the compiler's notices
about gymnasium's own model files (nothing a user can act on) are dropped.
"""
import logging
import warnings

import mujoco

from envs.base import GymEnv

logger = logging.getLogger(__name__)
_announced = set()
MODEL_NOTICES = ("compiler attribute 'settotalmass' is deprecated",)


def log_warning(message):
    if not any(notice in message for notice in MODEL_NOTICES):
        logger.warning('MuJoCo: %s', message)


mujoco.set_mju_user_warning(log_warning)


def announce(env_id, message, *values):
    if env_id not in _announced:
        _announced.add(env_id)
        logger.warning(message, *values)


def maintained_id(env_id):
    """'-v2' -> '-v5'; other ids unchanged ('-v4' is announced as out of date)."""
    name, version = env_id.rsplit('-', 1)
    if version == 'v4':
        announce(env_id, '%s is out of date (%s-v5 is the maintained version); running %s as asked',
                 env_id, name, env_id)
    if version != 'v2':
        return env_id
    new_id = f'{name}-v5'
    announce(env_id, '%s needs mujoco-py; running the maintained %s instead', env_id, new_id)
    return new_id


class MuJoCoEnv(GymEnv):
    category = 'mujoco'

    def __init__(self, args):
        env_id = maintained_id(args.env)
        with warnings.catch_warnings():
            warnings.filterwarnings('ignore', '.*is out of date', DeprecationWarning)  # announced above
            super().__init__(args, env_id)


def make(args):
    return MuJoCoEnv(args)
