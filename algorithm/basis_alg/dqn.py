"""DQN in TensorFlow (twin of dqn_torch.py): vector or image Q-networks, double and dueling;
docs/algorithms.md section 6."""
import numpy as np

from algorithm.basis_alg.base import BaseAgent, make_adam
from utils.tf_utils import Network, conv_torso, dense, get_vars, mlp, select_action_values, tf, v1


class QNetwork(Network):
    """A torso (Dense(256) on vectors, the Nature conv stack on images) and one or two heads.

    With `dueling`, Q = V + A - mean(A), the value head mirroring the advantage head.
    """

    def __init__(self, name, n_actions, dueling=False):
        super().__init__(name)
        self.n_actions, self.dueling = n_actions, dueling

    def __call__(self, obs):
        with self.scope():
            if len(obs.shape) == 4:
                features, hidden = conv_torso(obs), 512
            else:
                with v1.variable_scope('torso'):
                    features, hidden = tf.nn.relu(dense(obs, 256, '0')), 256
            advantage = mlp(features, (hidden,), self.n_actions, 'advantage')
            if not self.dueling:
                return advantage
            value = mlp(features, (hidden,), 1, 'value')
        return value + advantage - tf.reduce_mean(advantage, axis=-1, keepdims=True)


def huber_loss(predictions, targets, delta=1.0):
    """Mean Huber loss, torch's F.huber_loss."""
    error = tf.abs(predictions - targets)
    return tf.reduce_mean(tf.where(error < delta, 0.5 * tf.square(error), delta * (error - 0.5 * delta)))


class DQN(BaseAgent):
    train_info = ('Q_loss',)
    step_info = ('Q_average',)
    hard_target_update = True

    def __init__(self, args):
        super().__init__(args)
        self.epsilon = args.eps_l  # the learner anneals it; explore=True acts epsilon-greedily

    def create_network(self):
        self.q = QNetwork('q', self.args.acts_dims[0], self.args.dueling)
        self.q_target = QNetwork('q_target', self.args.acts_dims[0], self.args.dueling)
        self.target_pairs = [('q_target', 'q')]

    def create_optimizers(self):
        if self.args.optimizer == 'adam':
            self.q_optimizer = make_adam(self.args.q_lr, 'q_optimizer', eps=self.args.Adam_eps)
        else:
            self.q_optimizer = v1.train.RMSPropOptimizer(self.args.q_lr, decay=self.args.RMSProp_decay,
                                                         epsilon=self.args.RMSProp_eps, name='q_optimizer')

    def act(self, obs):
        q = self.q(obs)
        action = tf.argmax(q, axis=-1)
        return action, action, {'Q_average': tf.reduce_max(q, axis=-1)}

    def step(self, obs, explore=False, test_info=False, noise=None):
        """The greedy action from the graph; epsilon-greedy exploration on top, in numpy."""
        action, info = super().step(obs, test_info=True)
        if explore and np.random.uniform() < self.epsilon:
            action = int(np.random.randint(self.args.acts_dims[0]))
        return (action, info) if test_info else action

    def q_losses(self, batch):
        obs, obs_next = self.preprocess_obs(batch['obs']), self.preprocess_obs(batch['obs_next'])
        q_next = self.q_target(obs_next)
        if self.args.double:
            v_next = select_action_values(q_next, tf.argmax(self.q(obs_next), axis=-1))
        else:
            v_next = tf.reduce_max(q_next, axis=-1, keepdims=True)
        target = tf.stop_gradient(batch['rews'] + (1.0 - batch['done']) * self.args.gamma * v_next)
        q_loss = huber_loss(select_action_values(self.q(obs), batch['acts']), target)
        return [(q_loss, self.q_optimizer, get_vars('q'))], {'Q_loss': q_loss}
