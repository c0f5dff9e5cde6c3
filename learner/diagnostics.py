"""Does the learned proxy reward track the true one? Measured on the tester's episodes.

RRD's reward net r_theta(s, a, s') is trained only to make its per-episode mean match the
episodic return per step, so nothing in the training losses says whether it recovers the
environment's dense reward. Each cycle, over the deterministic test episodes, this reports
  ProxyCorr:   Pearson correlation of r_theta and the true per-step reward (with --env_type
               normal the stored one, clipped on Atari: Tester.rollout) over all test
               transitions of the cycle; NaN when either is constant (the correlation is
               undefined then, e.g. a game whose test episodes score nothing);
  DecompError: |sum_t r_theta - R_ep| / T, the return-decomposition error per step, averaged
               over the test episodes.
"""
import math

import numpy as np

CHUNK = 256  # transitions per proxy_reward call: bounds memory on Atari frames, keeps calls few


def pearson(x, y):
    """Pearson correlation of two equal-length vectors; NaN when either has no variance."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    x, y = x - x.mean(), y - y.mean()
    scale = math.sqrt(np.dot(x, x) * np.dot(y, y))
    return float(np.dot(x, y) / scale) if scale > 0 else math.nan


def decomposition_error(proxy, true_rewards):
    """|sum_t r_theta - R_ep| / T for one episode."""
    return abs(float(np.sum(proxy, dtype=np.float64)) - float(np.sum(true_rewards, dtype=np.float64))) / len(proxy)


class ProxyDiagnostics:
    """Collects the test transitions of one cycle; `summary` returns the two measures and forgets them.

    Observations are held only until CHUNK of them are pending, then replaced by their proxy
    rewards, so a long Atari episode never keeps its frames."""

    def __init__(self, agent):
        self.agent = agent
        self._pending = ([], [], [])  # obs, acts, obs_next not yet evaluated
        self._episode_proxy, self._episode_true = [], []
        self.episodes = []  # (proxy [T], true reward [T]) per episode ended since the last summary

    def add(self, obs, action, obs_next, true_reward):
        for column, value in zip(self._pending, (obs, action, obs_next)):
            column.append(value)
        self._episode_true.append(true_reward)
        if len(self._pending[0]) >= CHUNK:
            self._evaluate()

    def _evaluate(self):
        if self._pending[0]:
            obs, acts, obs_next = (np.asarray(column) for column in self._pending)
            self._episode_proxy.append(self.agent.proxy_reward(obs, acts, obs_next))
            self._pending = ([], [], [])

    def end_episode(self):
        self._evaluate()
        if self._episode_true:
            self.episodes.append((np.concatenate(self._episode_proxy), np.asarray(self._episode_true, np.float64)))
        self._episode_proxy, self._episode_true = [], []

    def summary(self):
        """{'ProxyCorr', 'DecompError'} over the episodes ended since the last summary."""
        if not self.episodes:
            return {}
        proxy, true_rewards = zip(*self.episodes)
        result = {'ProxyCorr': pearson(np.concatenate(proxy), np.concatenate(true_rewards)),
                  'DecompError': float(np.mean([decomposition_error(*episode) for episode in self.episodes]))}
        self.episodes = []
        return result
