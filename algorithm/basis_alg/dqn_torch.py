"""DQN in PyTorch (twin of dqn.py): vector or image Q-networks, double and dueling;
docs/algorithms.md section 6."""
import copy

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from algorithm.basis_alg.base_torch import BaseAgent, make_adam
from utils.torch_utils import ConvTorso, RMSPropTF, dense, get_vars, mlp, select_action_values


class QNetwork(nn.Module):
    """A torso (Dense(256) on vectors, the Nature conv stack on images) and one or two heads.

    With `dueling`, Q = V + A - mean(A), the value head mirroring the advantage head.
    """

    def __init__(self, obs_dims, n_actions, dueling=False):
        super().__init__()
        if len(obs_dims) == 3:
            self.torso, hidden = ConvTorso(obs_dims[-1], tuple(obs_dims[:2])), 512
            features = self.torso.out_dim
        else:
            self.torso, hidden = nn.Sequential(dense(obs_dims[0], 256), nn.ReLU()), 256
            features = 256
        self.advantage = mlp(features, (hidden,), n_actions)
        self.value = mlp(features, (hidden,), 1) if dueling else None

    def forward(self, obs):
        features = self.torso(obs)
        advantage = self.advantage(features)
        if self.value is None:
            return advantage
        return self.value(features) + advantage - advantage.mean(dim=-1, keepdim=True)


class DQN(BaseAgent):
    train_info = ('Q_loss',)
    step_info = ('Q_average',)
    checkpoint_names = ('q', 'q_target', 'q_optimizer')
    hard_target_update = True

    def __init__(self, args):
        super().__init__(args)
        self.epsilon = args.eps_l  # the learner anneals it; explore=True acts epsilon-greedily

    def create_network(self):
        self.q = QNetwork(self.args.obs_dims, self.args.acts_dims[0], self.args.dueling).to(self.device)
        self.q_target = copy.deepcopy(self.q)
        self.target_pairs = [(self.q_target, self.q)]

    def create_optimizers(self):
        if self.args.optimizer == 'adam':
            self.q_optimizer = make_adam(get_vars(self.q), self.args.q_lr, self.device, eps=self.args.Adam_eps)
        else:
            self.q_optimizer = RMSPropTF(get_vars(self.q), self.args.q_lr, self.args.RMSProp_decay,
                                         self.args.RMSProp_eps)

    def loss_branches(self, kind):
        """No policy: `train` is the critic's update alone and `train_pi` changes nothing, as in TF."""
        return tuple(branch for branch in super().loss_branches(kind) if branch != ('pi_losses',))

    def act(self, obs, explore, noise, with_info):
        q = self.q(obs)
        action = q.argmax(dim=-1)
        if explore and np.random.uniform() < self.epsilon:  # numpy draws, as the TF twin makes
            action = torch.as_tensor(np.random.randint(self.args.acts_dims[0], size=action.shape), device=self.device)
        return action, ({'Q_average': q.max(dim=-1).values} if with_info else {})

    def q_losses(self, batch):
        obs, obs_next = self.preprocess_obs(batch['obs']), self.preprocess_obs(batch['obs_next'])
        with torch.no_grad():
            q_next = self.q_target(obs_next)
            if self.args.double:
                v_next = select_action_values(q_next, self.q(obs_next).argmax(dim=-1))
            else:
                v_next = q_next.max(dim=-1, keepdim=True).values
            target = batch['rews'] + (1.0 - batch['done']) * self.args.gamma * v_next
        q_loss = F.huber_loss(select_action_values(self.q(obs), batch['acts']), target, delta=1.0)
        return [(q_loss, self.q_optimizer)], {'Q_loss': q_loss.detach()}
