"""Evaluation of docs/algorithms.md section 10: deterministic episodes on an env instance of their own."""
import numpy as np

from learner.diagnostics import ProxyDiagnostics
from learner.learner import random_action


class TestsAborted(Exception):
    """The test episodes were cut short on request (a second stop signal, train.StopSignals)."""


class Tester:
    def __init__(self, args, env, agent, logger):
        self.args, self.env, self.agent, self.logger = args, env, agent, logger
        self.abort_requested = False
        self.seed = args.seed + 1  # first reset only; later episodes continue the env's RNG
        self.steps, self.returns, self.stds = [], [], []
        self.diagnostics = ProxyDiagnostics(agent) if args.alg == 'rrd' else None

    def act(self, obs):
        """The greedy action, except with probability test_eps on discrete envs."""
        if self.args.discrete and np.random.uniform() < self.args.test_eps:
            return random_action(self.args), {}
        return self.agent.step(obs, test_info=True)

    def rollout(self):
        obs, done = self.env.reset(seed=self.seed), False
        self.seed = None
        while not done:
            action, info = self.act(obs)
            self.logger.add_dict(info, prefix='charts/')
            obs_next, reward, terminated, truncated, step_info = self.env.step(action)
            if self.diagnostics:  # the reward whose episode sum the reward net learns: the stored one
                # with dense rewards (clipped on Atari), the env's own with episodic ones
                true_reward = reward if self.args.env_type == 'normal' else step_info['dense_reward']
                self.diagnostics.add(obs, action, obs_next, true_reward)
            obs, done = obs_next, terminated or truncated
            if self.abort_requested:
                raise TestsAborted()
        if self.diagnostics:
            self.diagnostics.end_episode()
        return self.env.env_info

    def cycle_summary(self, env_steps):
        """Run `test_rollouts` episodes; record their mean return for the table and the npz."""
        infos = [self.rollout() for _ in range(self.args.test_rollouts)]
        returns = np.array([info['Rewards'] for info in infos], dtype=np.float64)
        self.logger.add_record('charts/TestRewards', returns.mean())
        self.logger.add_record('charts/TestSteps', np.mean([info['Steps'] for info in infos]))
        self.steps.append(env_steps)
        self.returns.append(returns.mean())
        self.stds.append(returns.std())
        if self.diagnostics:
            self.logger.add_dict(self.diagnostics.summary(), prefix='charts/')

    def state(self):
        """The record so far and the test env's RNG (tests run whole episodes: nothing is running)."""
        return {'steps': list(self.steps), 'returns': list(self.returns), 'stds': list(self.stds),
                'seed': self.seed, 'env': self.env.state()}

    def restore(self, state):
        self.steps, self.returns, self.stds = list(state['steps']), list(state['returns']), list(state['stds'])
        self.seed = state['seed']
        self.env.restore(state['env'])

    def epoch_summary(self):
        if self.args.save_rews:
            return self.logger.save_npz(self.steps, self.returns, std=self.stds)
