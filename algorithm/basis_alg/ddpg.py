"""DDPG in TensorFlow (twin of ddpg_torch.py); docs/algorithms.md section 5."""
from algorithm.basis_alg.base import BaseAgent, make_adam
from utils.tf_utils import Network, dense, get_vars, mlp, tf


class MLPPolicy(Network):
    """Deterministic policy: hidden ReLU layers, tanh output in [-1, 1]."""

    def __init__(self, name, act_dim, hidden=(400, 300)):
        super().__init__(name)
        self.act_dim, self.hidden = act_dim, hidden

    def __call__(self, obs):
        with self.scope():
            return tf.tanh(mlp(obs, self.hidden, self.act_dim, 'net'))


class MLPQValue(Network):
    """DDPG critic: the action joins after the first hidden layer."""

    def __call__(self, obs, acts):
        with self.scope():
            h = tf.nn.relu(dense(obs, 400, 'obs_layer'))
            return mlp(tf.concat([h, acts], axis=-1), (300,), 1, 'net')


def explore_action(pi, std_act, noise):
    """Gaussian exploration around a deterministic action, clipped to the action box."""
    return tf.clip_by_value(pi + std_act * noise, -1.0, 1.0)


class DDPG(BaseAgent):
    train_info = ('Pi_loss', 'Q_loss', 'Q_reg_loss')
    step_info = ('Q_average',)

    def create_network(self):
        act_dim = self.args.acts_dims[0]
        self.pi, self.q = MLPPolicy('pi', act_dim), MLPQValue('q')
        self.pi_target, self.q_target = MLPPolicy('pi_target', act_dim), MLPQValue('q_target')
        self.target_pairs = [('pi_target', 'pi'), ('q_target', 'q')]

    def create_optimizers(self):
        self.pi_optimizer = make_adam(self.args.pi_lr, 'pi_optimizer')
        self.q_optimizer = make_adam(self.args.q_lr, 'q_optimizer')

    def policy_value(self, obs, acts):
        """The critic the policy climbs (TD3 overrides it with its first critic)."""
        return self.q(obs, acts)

    def act(self, obs):
        pi = self.pi(obs)
        action = explore_action(pi, self.args.std_act, self.noise_input('act_noise', obs))
        return pi, action, {'Q_average': self.policy_value(obs, pi)}

    def pi_losses(self, batch):
        obs = self.preprocess_obs(batch['obs'])
        pi_loss = -tf.reduce_mean(self.policy_value(obs, self.pi(obs)))
        return [(pi_loss, self.pi_optimizer, get_vars('pi'))], {'Pi_loss': pi_loss}

    def q_losses(self, batch):
        obs, obs_next = self.preprocess_obs(batch['obs']), self.preprocess_obs(batch['obs_next'])
        q_next = self.q_target(obs_next, self.pi_target(obs_next))
        target = tf.stop_gradient(batch['rews'] + (1.0 - batch['done']) * self.args.gamma * q_next)
        q_loss = tf.reduce_mean(tf.square(self.q(obs, batch['acts']) - target))
        q_reg_loss = tf.reduce_mean(tf.stack([self.args.q_reg * tf.reduce_sum(tf.square(var)) / 2.0
                                              for var in get_vars('q')]))
        return ([(q_loss + q_reg_loss, self.q_optimizer, get_vars('q'))],
                {'Q_loss': q_loss, 'Q_reg_loss': q_reg_loss})
