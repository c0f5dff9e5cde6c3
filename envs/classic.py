"""Gymnasium classic-control envs (CartPole, Acrobot, Pendulum): small and fast, for tests."""
from envs.base import GymEnv


class ClassicEnv(GymEnv):
    category = 'classic'


def make(args):
    return ClassicEnv(args, args.env)
