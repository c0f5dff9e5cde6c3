"""DDPG in PyTorch (twin of ddpg.py); docs/algorithms.md section 5."""
import copy

import torch
import torch.nn as nn

from algorithm.basis_alg.base_torch import BaseAgent, make_adam
from utils.torch_utils import dense, get_vars, input_gradient_mlp, mlp


class MLPPolicy(nn.Module):
    """Deterministic policy: hidden ReLU layers, tanh output in [-1, 1]."""

    def __init__(self, obs_dim, act_dim, hidden=(400, 300)):
        super().__init__()
        self.net = mlp(obs_dim, hidden, act_dim)

    def forward(self, obs):
        return torch.tanh(self.net(obs))


class MLPQValue(nn.Module):
    """DDPG critic: the action joins after the first hidden layer."""

    def __init__(self, obs_dim, act_dim):
        super().__init__()
        self.obs_layer = dense(obs_dim, 400)
        self.net = mlp(400 + act_dim, (300,), 1)

    def forward(self, obs, acts):
        h = torch.relu(self.obs_layer(obs))
        return self.net(torch.cat([h, acts], dim=-1))

    def action_value(self, obs, acts):
        """Q(obs, acts) for a policy loss: gradients reach `acts` only (input_gradient_mlp)."""
        h = torch.relu(nn.functional.linear(obs, self.obs_layer.weight.detach(), self.obs_layer.bias.detach()))
        return input_gradient_mlp(self.net, h, acts)


def explore_action(pi, std_act, noise=None):
    """Gaussian exploration around a deterministic action, clipped to the action box."""
    noise = torch.randn_like(pi) if noise is None else noise
    return torch.clamp(pi + std_act * noise, -1.0, 1.0)


class DDPG(BaseAgent):
    train_info = ('Pi_loss', 'Q_loss', 'Q_reg_loss')
    step_info = ('Q_average',)
    checkpoint_names = ('pi', 'q', 'pi_target', 'q_target', 'pi_optimizer', 'q_optimizer')

    def create_network(self):
        obs_dim, act_dim = self.args.obs_dims[0], self.args.acts_dims[0]
        self.pi = MLPPolicy(obs_dim, act_dim).to(self.device)
        self.q = MLPQValue(obs_dim, act_dim).to(self.device)
        self.pi_target, self.q_target = copy.deepcopy(self.pi), copy.deepcopy(self.q)
        self.target_pairs = [(self.pi_target, self.pi), (self.q_target, self.q)]

    def create_optimizers(self):
        self.pi_optimizer = make_adam(get_vars(self.pi), self.args.pi_lr, self.device)
        self.q_optimizer = make_adam(get_vars(self.q), self.args.q_lr, self.device)

    def policy_value(self, obs, acts):
        """The critic the policy climbs (TD3 overrides it with its first critic), with gradients
        for the actions only."""
        return self.q.action_value(obs, acts)

    def act(self, obs, explore, noise, with_info):
        pi = self.pi(obs)
        action = explore_action(pi, self.args.std_act, noise) if explore else pi
        return action, ({'Q_average': self.policy_value(obs, pi)} if with_info else {})

    def pi_losses(self, batch):
        obs = self.preprocess_obs(batch['obs'])
        pi_loss = -self.policy_value(obs, self.pi(obs)).mean()
        return [(pi_loss, self.pi_optimizer)], {'Pi_loss': pi_loss.detach()}

    def q_losses(self, batch):
        obs, obs_next = self.preprocess_obs(batch['obs']), self.preprocess_obs(batch['obs_next'])
        with torch.no_grad():
            q_next = self.q_target(obs_next, self.pi_target(obs_next))
            target = batch['rews'] + (1.0 - batch['done']) * self.args.gamma * q_next
        q_loss = (self.q(obs, batch['acts']) - target).square().mean()
        q_reg_loss = torch.stack([self.args.q_reg * p.square().sum() / 2.0 for p in get_vars(self.q)]).mean()
        return ([(q_loss + q_reg_loss, self.q_optimizer)],
                {'Q_loss': q_loss.detach(), 'Q_reg_loss': q_reg_loss.detach()})
