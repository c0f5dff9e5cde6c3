"""What every env shares: the episode bookkeeping, the `test_timesteps` cap and the reward type.

Subclasses implement `_reset(seed) -> obs` and `_step(action) -> (obs, dense_reward,
terminated)`; this class turns that into the interface of docs/design.md, so the episodic
reward (`--env_type ep_rews`) is defined once for all categories.

Checkpoints (`state` / `restore`): an env is resumed by replay rather than by copying simulator
internals. `state` holds the env's RNG now and as it was just before the running episode's
reset; `restore` resets again from that RNG state and replays the episode's actions, which
rebuilds the simulator exactly (MuJoCo, the classic tasks and ALE without sticky actions are
deterministic given the reset draws and the actions), including solver warm starts a copy of
qpos/qvel would miss. ALE's internal RNG (sticky actions) is not restored.
"""
import copy

import gymnasium
import numpy as np


class BaseEnv:
    category = None

    def __init__(self, args):
        assert args.env_type in ('normal', 'ep_rews'), args.env_type
        self.env_type = args.env_type
        self.max_steps = args.test_timesteps
        self.steps, self.rews = 0, 0.0
        self._reset_from = (None, None)  # (seed, RNG state) of the running episode's reset

    def reset(self, seed=None):
        self._reset_from = (seed, self.rng_state())
        self.steps, self.rews = 0, 0.0
        return self._reset(seed)

    # ---- checkpoints ------------------------------------------------------------------------------
    def rng_state(self):
        """A copy of the env's RNG state, or None before it has one (the first seeded reset)."""
        return None

    def set_rng_state(self, state):
        pass

    def state(self):
        return {'reset_from': self._reset_from, 'rng': self.rng_state()}

    def restore(self, state, actions=None):
        """Restore `state`; with `actions` (those taken since the reset), rebuild the running
        episode by replaying them and return its current observation."""
        obs = None
        if actions is not None:
            seed, rng = state['reset_from']
            self.set_rng_state(rng)
            obs = self.reset(seed)
            for action in actions:
                obs = self.step(action)[0]
        self.set_rng_state(state['rng'])
        return obs

    def step(self, action):
        """As gymnasium: `truncated` marks the time cap and, as in gymnasium's TimeLimit, is set
        at the cap even when the episode also terminates there; `terminated` is a true end."""
        obs, dense, terminated = self._step(action)
        dense = float(dense)
        self.steps += 1
        self.rews += dense
        truncated = self.steps >= self.max_steps
        if self.env_type == 'ep_rews':
            reward = self.rews if terminated or truncated else 0.0
        else:
            reward = self._normal_reward(dense)
        return obs, reward, bool(terminated), truncated, {'dense_reward': dense}

    def _normal_reward(self, dense):
        """The reward stored for `--env_type normal`; Atari clips it."""
        return dense

    @property
    def env_info(self):
        return {'Steps': self.steps, 'Rewards': self.rews}

    def close(self):
        pass


class GymEnv(BaseEnv):
    """A gymnasium env with a vector observation and a Box or Discrete action space."""

    def __init__(self, args, env_id):
        super().__init__(args)
        # `.unwrapped` drops the registered TimeLimit (the cap is ours) and the
        # passive-checker/order-enforcing wrappers, which only cost time per step.
        self.env = gymnasium.make(env_id, disable_env_checker=True).unwrapped
        self.obs_dims = list(self.env.observation_space.shape)
        space = self.env.action_space
        self.discrete = isinstance(space, gymnasium.spaces.Discrete)
        if self.discrete:
            self.acts_dims = [int(space.n)]
        else:
            # Agents act in [-1, 1]; scaling by the bound is only right for symmetric boxes.
            assert np.allclose(space.low, -space.high), (env_id, space)
            self.act_bound = space.high
            self.acts_dims = list(space.shape)

    def rng_state(self):
        rng = self.env._np_random  # the `np_random` property would create one
        return None if rng is None else copy.deepcopy(rng.bit_generator.state)

    def set_rng_state(self, state):
        if state is not None:
            self.env.np_random.bit_generator.state = copy.deepcopy(state)

    def _reset(self, seed):
        obs, _ = self.env.reset(seed=seed)
        return np.asarray(obs, dtype=np.float32)

    def _step(self, action):
        action = int(action) if self.discrete else np.asarray(action) * self.act_bound
        obs, reward, terminated, _, _ = self.env.step(action)
        return np.asarray(obs, dtype=np.float32), reward, terminated

    def close(self):
        self.env.close()
