"""TD3 in PyTorch (twin of td3.py); docs/algorithms.md section 5. The learner calls train_q every update
and train_pi every pi_delay_freq-th update, each on its own batch."""
import copy

import torch

from algorithm.basis_alg.base_torch import make_adam
from algorithm.basis_alg.ddpg_torch import DDPG, MLPPolicy
from algorithm.basis_alg.sac_torch import MLPQValueSAC
from utils.torch_utils import get_vars


class TD3(DDPG):
    """DDPG's acting and policy step, with twin critics and target policy smoothing."""

    train_info = ('Pi_loss', 'Q_loss')
    checkpoint_names = ('pi', 'q1', 'q2', 'pi_target', 'q1_target', 'q2_target', 'pi_optimizer', 'q_optimizer')
    loss_noise = {'q_losses': ('target_noise',)}
    update_kinds = ('train_q', 'train_pi')

    def create_network(self):
        obs_dim, act_dim = self.args.obs_dims[0], self.args.acts_dims[0]
        self.pi = MLPPolicy(obs_dim, act_dim, hidden=(256, 256)).to(self.device)
        self.q1 = MLPQValueSAC(obs_dim, act_dim).to(self.device)
        self.q2 = MLPQValueSAC(obs_dim, act_dim).to(self.device)
        self.pi_target, self.q1_target, self.q2_target = (copy.deepcopy(m) for m in (self.pi, self.q1, self.q2))
        self.target_pairs = [(self.pi_target, self.pi), (self.q1_target, self.q1), (self.q2_target, self.q2)]

    def create_optimizers(self):
        self.pi_optimizer = make_adam(get_vars(self.pi), self.args.pi_lr, self.device)
        self.q_optimizer = make_adam(get_vars([self.q1, self.q2]), self.args.q_lr, self.device)

    def policy_value(self, obs, acts):
        return self.q1.action_value(obs, acts)

    def q_losses(self, batch):
        obs, obs_next = self.preprocess_obs(batch['obs']), self.preprocess_obs(batch['obs_next'])
        with torch.no_grad():
            pi_next = self.pi_target(obs_next)
            noise = batch.get('target_noise')
            noise = torch.randn_like(pi_next) if noise is None else noise
            smoothing = torch.clamp(noise * self.args.pi_t_std, -self.args.pi_t_clip, self.args.pi_t_clip)
            action_next = torch.clamp(pi_next + smoothing, -1.0, 1.0)
            q_next = torch.min(self.q1_target(obs_next, action_next), self.q2_target(obs_next, action_next))
            target = batch['rews'] + (1.0 - batch['done']) * self.args.gamma * q_next
        q_loss = (self.q1(obs, batch['acts']) - target).square().mean() \
            + (self.q2(obs, batch['acts']) - target).square().mean()
        return [(q_loss, self.q_optimizer)], {'Q_loss': q_loss.detach()}
