"""Randomized Return Decomposition in PyTorch (twin of rrd.py); docs/algorithms.md section 7.

`RRD(basis_cls)` returns the basis agent class extended with a proxy reward network. The
reward-net update joins the critic step (`q_losses`, so it runs in `train` and TD3's
`train_q`), and the critic learns from r_theta(s, a, s') computed before that update. In a
parallel update (RRD over DDPG or SAC) the reward loss runs on the policy's branch.
"""
import torch
import torch.nn as nn

from algorithm.basis_alg.base_torch import make_adam
from utils.torch_utils import ConvTorso, get_vars, mlp, select_action_values


class MLPRewardNet(nn.Module):
    """r(s, a, s') on concat(obs, act, obs - obs_next); discrete actions select a head output."""

    def __init__(self, obs_dim, act_dim, discrete=False):
        super().__init__()
        self.discrete = discrete
        in_dim = 2 * obs_dim + (0 if discrete else act_dim)
        self.net = mlp(in_dim, (256, 256), act_dim if discrete else 1)

    def forward(self, obs, acts, obs_next):
        if self.discrete:
            return select_action_values(self.net(torch.cat([obs, obs - obs_next], dim=-1)), acts)
        return self.net(torch.cat([obs, acts, obs - obs_next], dim=-1))


class ConvRewardNet(nn.Module):
    """r(s, a, s') on images: concat(obs, obs - obs_next) on channels, conv torso, one output per action."""

    def __init__(self, obs_dims, n_actions):
        super().__init__()
        self.torso = ConvTorso(2 * obs_dims[-1], tuple(obs_dims[:2]))
        self.head = mlp(self.torso.out_dim, (512,), n_actions)

    def forward(self, obs, acts, obs_next):
        return select_action_values(self.head(self.torso(torch.cat([obs, obs - obs_next], dim=-1))), acts)


class RRDMixin:
    def __init__(self, args):
        self.loss_noise = {**self.loss_noise, 'critic_losses': self.loss_noise.get('q_losses', ())}
        super().__init__(args)
        self.train_info = self.train_info + (('R_loss', 'R_var') if args.rrd_bias_correction else ('R_loss',))
        self.checkpoint_names = self.checkpoint_names + ('reward_net', 'r_optimizer')

    def create_network(self):
        super().create_network()
        obs_dims, acts_dims = self.args.obs_dims, self.args.acts_dims
        if len(obs_dims) == 3:
            self.reward_net = ConvRewardNet(obs_dims, acts_dims[0])
        else:
            self.reward_net = MLPRewardNet(obs_dims[0], acts_dims[0], self.args.discrete)
        self.reward_net.to(self.device)

    def create_optimizers(self):
        super().create_optimizers()
        self.r_optimizer = make_adam(get_vars(self.reward_net), self.args.r_lr, self.device)

    def proxy_rewards(self, batch):
        """r_theta(s, a, s') of the basis batch: the critic's reward, without gradient."""
        with torch.no_grad():
            return self.reward_net(self.preprocess_obs(batch['obs']), batch['acts'],
                                   self.preprocess_obs(batch['obs_next']))

    def reward_losses(self, batch):
        """The return-decomposition loss on the RRD batch."""
        episodes, samples = batch['rrd_obs'].shape[:2]
        rrd_r = self.reward_net(self.preprocess_obs(batch['rrd_obs'].flatten(0, 1)), batch['rrd_acts'].flatten(0, 1),
                                self.preprocess_obs(batch['rrd_obs_next'].flatten(0, 1))).view(episodes, samples)
        rrd_r_mean = rrd_r.mean(dim=1, keepdim=True)
        r_loss = (rrd_r_mean - batch['rrd_rews']).square().mean()
        info = {'R_loss': r_loss.detach()}
        if self.args.rrd_bias_correction:
            r_var = (rrd_r - rrd_r_mean).square().sum(dim=1, keepdim=True) / (samples - 1)
            info['R_var'] = r_var.mean().detach()
            r_loss = r_loss - (r_var * batch['rrd_var_coef'] / samples).mean()
        return [(r_loss, self.r_optimizer)], info

    def proxy_reward(self, obs, acts, obs_next):
        """r_theta(s, a, s') as a float array [T], for diagnostics: the critic's reward input,
        from arrays shaped and typed as the buffer samples them."""
        batch = self.to_tensors({'obs': obs, 'acts': acts, 'obs_next': obs_next})
        return self.proxy_rewards(batch)[:, 0].cpu().numpy()

    def critic_losses(self, batch):
        """The basis algorithm's critic losses on the proxy rewards."""
        return super().q_losses({**batch, 'rews': self.proxy_rewards(batch)})

    def q_losses(self, batch):
        q_updates, q_info = self.critic_losses(batch)
        r_updates, r_info = self.reward_losses(batch)
        return q_updates + r_updates, {**q_info, **r_info}

    def loss_branches(self, kind):
        """Where the basis update has a policy branch beside the critic's, the reward loss joins
        the policy's: about equal work on each (RRD-SAC: ten 256-wide products each). Alone, the
        reward net is too small a branch beside a critic (RRD-TD3's critic step ran x0.66 as two
        branches), so other updates keep it inside `q_losses`."""
        branches = super().loss_branches(kind)
        if len(branches) < 2 or ('q_losses',) not in branches:
            return branches
        policy = next(branch for branch in branches if branch != ('q_losses',))
        return policy + ('reward_losses',), ('critic_losses',)


def RRD(basis_cls):
    """The RRD agent class over a torch basis algorithm class."""
    return type(f'RRD{basis_cls.__name__}', (RRDMixin, basis_cls), {})
