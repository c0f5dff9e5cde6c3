"""What every env shares: the episode bookkeeping, the `test_timesteps` cap and the reward type.

Subclasses implement `_reset(seed) -> obs` and `_step(action) -> (obs, dense_reward,
terminated)`; this class turns that into the interface of docs/design.md, so the episodic
reward (`--env_type ep_rews`) is defined once for all categories.
"""
import gymnasium
import numpy as np


class BaseEnv:
    category = None

    def __init__(self, args):
        assert args.env_type in ('normal', 'ep_rews'), args.env_type
        self.env_type = args.env_type
        self.max_steps = args.test_timesteps
        self.steps, self.rews = 0, 0.0

    def reset(self, seed=None):
        self.steps, self.rews = 0, 0.0
        return self._reset(seed)

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

    def _reset(self, seed):
        obs, _ = self.env.reset(seed=seed)
        return np.asarray(obs, dtype=np.float32)

    def _step(self, action):
        action = int(action) if self.discrete else np.asarray(action) * self.act_bound
        obs, reward, terminated, _, _ = self.env.step(action)
        return np.asarray(obs, dtype=np.float32), reward, terminated

    def close(self):
        self.env.close()
