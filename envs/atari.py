"""Atari 2600 games through ale-py, preprocessed as in docs/algorithms.md section 2.

Frame skip 4 is done by the emulator wrapper (rewards summed over the 4 frames); the frame
kept is the last one, without max-pooling over the last two. Episodes are whole games (no
life-loss ends), and ALE's own frame limit is off so only `test_timesteps` caps an episode.
"""
import re
from collections import deque

import ale_py
import cv2
import numpy as np
from ale_py.env import AtariEnv as ALEEnv

from envs.base import BaseEnv

FRAME_SIZE = 84
# ALE prints its banner ('A.L.E: Arcade Learning Environment ...', '[Powered by Stella]') on stderr
# when an interface is built, before ale_py's env lowers the (process-wide) log level itself.
ale_py.ALEInterface.setLoggerMode(ale_py.LoggerMode.Error)


def preprocess(rgb):
    """Emulator RGB screen -> 84x84 uint8 grey frame."""
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    return cv2.resize(grey, (FRAME_SIZE, FRAME_SIZE), interpolation=cv2.INTER_AREA)


class AtariEnv(BaseEnv):
    category = 'atari'
    discrete = True

    def __init__(self, args):
        super().__init__(args)
        rom = re.sub(r'(?<!^)(?=[A-Z])', '_', args.env).lower()  # 'MsPacman' -> 'ms_pacman'
        self.ale_env = ALEEnv(
            game=rom, obs_type='rgb', frameskip=4, full_action_space=False,
            repeat_action_probability=0.25 if getattr(args, 'sticky', False) else 0.0)
        assert self.ale_env.get_action_meanings()[0] == 'NOOP'  # action 0 is the no-op
        self.noop = getattr(args, 'noop', 30)
        self.rews_scale = getattr(args, 'rews_scale', 1.0)
        n_frames = getattr(args, 'frames', 4)
        assert self.noop >= n_frames, 'the no-op reset fills the frame stack'
        # The grey frames of the current stack, oldest first; frames[-1] is the newest.
        self.frames = deque(maxlen=n_frames)
        self.obs_dims = [FRAME_SIZE, FRAME_SIZE, n_frames]
        self.acts_dims = [int(self.ale_env.action_space.n)]

    def _obs(self):
        return np.stack(self.frames, axis=-1)

    def _reset(self, seed):
        """Emulator reset, then `noop` no-ops, the last `frames` of which fill the stack;
        a game that ends meanwhile is reset again."""
        while True:
            self.ale_env.reset(seed=seed)
            seed = None  # reseeding a restart would replay the same ending
            for i in range(self.noop):
                rgb, _, terminated, _, _ = self.ale_env.step(0)
                if terminated:
                    break
                if i >= self.noop - self.frames.maxlen:
                    self.frames.append(preprocess(rgb))
            else:
                return self._obs()

    def _step(self, action):
        rgb, reward, terminated, _, _ = self.ale_env.step(int(action))
        self.frames.append(preprocess(rgb))
        return self._obs(), reward, terminated

    def _normal_reward(self, dense):
        return float(np.clip(dense, -self.rews_scale, self.rews_scale))

    def close(self):
        self.ale_env.close()


def make(args):
    return AtariEnv(args)
