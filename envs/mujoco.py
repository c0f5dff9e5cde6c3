"""MuJoCo locomotion/control envs through gymnasium and the `mujoco` bindings.

The original release's '-v2' ids need mujoco-py, which is unmaintained; they run as '-v5'
(same robots and rewards on the maintained bindings), announced once per id and process.

MuJoCo's warnings go through the project's logger instead of MuJoCo's default handler, which
prints them and appends them to MUJOCO_LOG.TXT in the working directory; the compiler's notices
about gymnasium's own model files (nothing a user can act on) are dropped.
"""
import logging

import mujoco

from envs.base import GymEnv

logger = logging.getLogger(__name__)
_announced = set()
MODEL_NOTICES = ("compiler attribute 'settotalmass' is deprecated",)


def log_warning(message):
    if not any(notice in message for notice in MODEL_NOTICES):
        logger.warning('MuJoCo: %s', message)


mujoco.set_mju_user_warning(log_warning)


def maintained_id(env_id):
    """'-v2' -> '-v5'; other ids unchanged."""
    name, version = env_id.rsplit('-', 1)
    if version != 'v2':
        return env_id
    new_id = f'{name}-v5'
    if env_id not in _announced:
        _announced.add(env_id)
        logger.warning('%s needs mujoco-py; running the maintained %s instead', env_id, new_id)
    return new_id


class MuJoCoEnv(GymEnv):
    category = 'mujoco'

    def __init__(self, args):
        super().__init__(args, maintained_id(args.env))


def make(args):
    return MuJoCoEnv(args)
