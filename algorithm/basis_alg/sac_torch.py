"""SAC in PyTorch (twin of sac.py); docs/algorithms.md section 5."""
import copy
import math

import torch
import torch.nn as nn

from algorithm.basis_alg.base_torch import BaseAgent, make_adam
from utils.torch_utils import RandomNormal, get_vars, input_gradient_mlp, mlp


class MLPStochasticPolicy(nn.Module):
    """Tanh-squashed Gaussian policy; log_std clipped to [-20, 2] and std floored at 1e-2."""

    def __init__(self, obs_dim, act_dim, hidden=(256, 256)):
        super().__init__()
        self.net = mlp(obs_dim, hidden, 2 * act_dim)

    def forward(self, obs, noise=None):
        """Returns (sampled action, its log-probability [B, 1], the Gaussian)."""
        mean, log_std = self.net(obs).chunk(2, dim=-1)
        dist = RandomNormal(mean, torch.clamp(log_std, -20.0, 2.0), std_floor=1e-2)
        u = dist.sample(noise)
        action = torch.tanh(u)
        log_p = dist.log_p(u) - torch.log(1.0 - action.square() + 1e-6).sum(dim=-1, keepdim=True)
        return action, log_p, dist


class MLPQValueSAC(nn.Module):
    """Critic on concat(obs, act); also TD3's critic."""

    def __init__(self, obs_dim, act_dim, hidden=(256, 256)):
        super().__init__()
        self.net = mlp(obs_dim + act_dim, hidden, 1)

    def forward(self, obs, acts):
        return self.net(torch.cat([obs, acts], dim=-1))

    def action_value(self, obs, acts):
        """Q(obs, acts) for a policy loss: gradients reach `acts` only (input_gradient_mlp)."""
        return input_gradient_mlp(self.net, obs, acts)


class Temperature(nn.Module):
    """log(alpha) as a learnable scalar; alpha stays a tensor so the hot loop never syncs."""

    def __init__(self, alpha_init):
        super().__init__()
        self.log_alpha = nn.Parameter(torch.tensor(math.log(alpha_init), dtype=torch.float32))

    def forward(self):
        return self.log_alpha.exp()


class SAC(BaseAgent):
    train_info = ('Pi_loss', 'Q_loss', 'Alpha')
    step_info = ('Q_average', 'Pi_step_std')
    checkpoint_names = ('pi', 'q1', 'q2', 'q1_target', 'q2_target', 'temperature',
                        'pi_optimizer', 'q_optimizer', 'alpha_optimizer')
    loss_noise = {'pi_losses': ('pi_noise',), 'q_losses': ('pi_next_noise',)}

    def create_network(self):
        obs_dim, act_dim = self.args.obs_dims[0], self.args.acts_dims[0]
        self.pi = MLPStochasticPolicy(obs_dim, act_dim).to(self.device)
        self.q1 = MLPQValueSAC(obs_dim, act_dim).to(self.device)
        self.q2 = MLPQValueSAC(obs_dim, act_dim).to(self.device)
        self.q1_target, self.q2_target = copy.deepcopy(self.q1), copy.deepcopy(self.q2)
        self.target_pairs = [(self.q1_target, self.q1), (self.q2_target, self.q2)]
        self.temperature = Temperature(self.args.alpha_init).to(self.device)
        self.target_entropy = -float(math.prod(self.args.acts_dims))

    def create_optimizers(self):
        self.pi_optimizer = make_adam(get_vars(self.pi), self.args.pi_lr, self.device)
        self.q_optimizer = make_adam(get_vars([self.q1, self.q2]), self.args.q_lr, self.device)
        # With alpha_lr = 0 the temperature is fixed: an idle optimiser keeps checkpoints uniform.
        self.alpha_optimizer = make_adam(get_vars(self.temperature), self.args.alpha_lr, self.device)

    def act(self, obs, explore, noise, with_info):
        sampled, log_p, dist = self.pi(obs, noise)
        action = sampled if explore else torch.tanh(dist.mean)
        if not with_info:
            return action, {}
        v_pi = self.min_q(obs, sampled) - self.temperature() * log_p
        return action, {'Q_average': v_pi, 'Pi_step_std': dist.std}

    def min_q(self, obs, acts, target=False):
        q1, q2 = (self.q1_target, self.q2_target) if target else (self.q1, self.q2)
        return torch.min(q1(obs, acts), q2(obs, acts))

    def pi_losses(self, batch):
        obs = self.preprocess_obs(batch['obs'])
        action, log_p, _ = self.pi(obs, batch.get('pi_noise'))
        log_alpha = self.temperature.log_alpha
        policy_value = torch.min(self.q1.action_value(obs, action), self.q2.action_value(obs, action))
        pi_loss = (log_alpha.exp().detach() * log_p - policy_value).mean()
        updates = [(pi_loss, self.pi_optimizer)]
        if self.args.alpha_lr > 0:
            alpha_loss = -log_alpha * (log_p.mean().detach() + self.target_entropy)
            updates.append((alpha_loss, self.alpha_optimizer))
        return updates, {'Pi_loss': pi_loss.detach(), 'Alpha': log_alpha.exp().detach()}

    def q_losses(self, batch):
        obs, obs_next = self.preprocess_obs(batch['obs']), self.preprocess_obs(batch['obs_next'])
        with torch.no_grad():
            action_next, log_p_next, _ = self.pi(obs_next, batch.get('pi_next_noise'))
            v_next = self.min_q(obs_next, action_next, target=True) - self.temperature() * log_p_next
            target = batch['rews'] + (1.0 - batch['done']) * self.args.gamma * v_next
        q_loss = (self.q1(obs, batch['acts']) - target).square().mean() \
            + (self.q2(obs, batch['acts']) - target).square().mean()
        return [(q_loss, self.q_optimizer)], {'Q_loss': q_loss.detach()}
