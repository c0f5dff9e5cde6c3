"""Environment registry and factory.

`envs_collection` maps every accepted id to its category; `make_env(args)` builds the env.
The category modules (and with them gymnasium, mujoco, ale-py, OpenCV) are imported only
inside `make_env`, so `import envs` stays cheap for code that only needs the id lists.
"""
import importlib

mujoco_names = ['Ant', 'HalfCheetah', 'Walker2d', 'Humanoid', 'Reacher', 'Swimmer', 'Hopper',
                'HumanoidStandup']
# The original release's '-v2' ids (mapped to '-v5', see envs/mujoco.py) and the maintained ones.
mujoco_list = [f'{name}-v{version}' for version in (2, 4, 5) for name in mujoco_names]

# The 57 games of the Atari-57 benchmark plus the 5 more of Dopamine's 60-game set (AirRaid,
# Carnival, ElevatorAction, JourneyEscape, Pooyan): 62 names, all present in ale-py 0.12's ROMs.
atari_list = [
    'AirRaid', 'Alien', 'Amidar', 'Assault', 'Asterix', 'Asteroids', 'Atlantis', 'BankHeist',
    'BattleZone', 'BeamRider', 'Berzerk', 'Bowling', 'Boxing', 'Breakout', 'Carnival',
    'Centipede', 'ChopperCommand', 'CrazyClimber', 'Defender', 'DemonAttack', 'DoubleDunk',
    'ElevatorAction', 'Enduro', 'FishingDerby', 'Freeway', 'Frostbite', 'Gopher', 'Gravitar',
    'Hero', 'IceHockey', 'Jamesbond', 'JourneyEscape', 'Kangaroo', 'Krull', 'KungFuMaster',
    'MontezumaRevenge', 'MsPacman', 'NameThisGame', 'Phoenix', 'Pitfall', 'Pong', 'Pooyan',
    'PrivateEye', 'Qbert', 'Riverraid', 'RoadRunner', 'Robotank', 'Seaquest', 'Skiing',
    'Solaris', 'SpaceInvaders', 'StarGunner', 'Surround', 'Tennis', 'TimePilot', 'Tutankham',
    'UpNDown', 'Venture', 'VideoPinball', 'WizardOfWor', 'YarsRevenge', 'Zaxxon',
]

# Small gymnasium classic-control tasks, for fast tests of the discrete and continuous paths.
classic_list = ['CartPole-v1', 'Acrobot-v1', 'Pendulum-v1']

envs_collection = {
    **{env_id: 'mujoco' for env_id in mujoco_list},
    **{env_id: 'atari' for env_id in atari_list},
    **{env_id: 'classic' for env_id in classic_list},
}


def make_env(args):
    """Build the env named by `args.env`; an unknown id raises ValueError listing the known ones."""
    category = envs_collection.get(args.env)
    if category is None:
        raise ValueError(
            f"unknown env '{args.env}'. Supported: MuJoCo {' '.join(mujoco_list)}; "
            f"Atari game names ({len(atari_list)}) {' '.join(atari_list)}; "
            f"classic {' '.join(classic_list)}")
    return importlib.import_module(f'envs.{category}').make(args)
