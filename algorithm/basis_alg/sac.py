"""SAC in TensorFlow (twin of sac_torch.py); docs/algorithms.md section 5."""
import math

from algorithm.basis_alg.base import BaseAgent, make_adam
from utils.tf_utils import Network, RandomNormal, get_vars, mlp, tf, v1


class MLPStochasticPolicy(Network):
    """Tanh-squashed Gaussian policy; log_std clipped to [-20, 2] and std floored at 1e-2."""

    def __init__(self, name, act_dim, hidden=(256, 256)):
        super().__init__(name)
        self.act_dim, self.hidden = act_dim, hidden

    def __call__(self, obs, noise=None):
        """Returns (sampled action, its log-probability [B, 1], the Gaussian)."""
        with self.scope():
            mean, log_std = tf.split(mlp(obs, self.hidden, 2 * self.act_dim, 'net'), 2, axis=-1)
        dist = RandomNormal(mean, tf.clip_by_value(log_std, -20.0, 2.0), std_floor=1e-2)
        u = dist.sample(noise)
        action = tf.tanh(u)
        log_p = dist.log_p(u) - tf.reduce_sum(tf.math.log(1.0 - tf.square(action) + 1e-6), axis=-1, keepdims=True)
        return action, log_p, dist


class MLPQValueSAC(Network):
    """Critic on concat(obs, act); also TD3's critic."""

    def __init__(self, name, hidden=(256, 256)):
        super().__init__(name)
        self.hidden = hidden

    def __call__(self, obs, acts):
        with self.scope():
            return mlp(tf.concat([obs, acts], axis=-1), self.hidden, 1, 'net')


class Temperature(Network):
    """log(alpha) as a learnable scalar."""

    def __init__(self, name, alpha_init):
        super().__init__(name)
        with self.scope():
            self.log_alpha = v1.get_variable('log_alpha', [], initializer=v1.constant_initializer(math.log(alpha_init)))

    def __call__(self):
        return tf.exp(self.log_alpha)


class SAC(BaseAgent):
    train_info = ('Pi_loss', 'Q_loss', 'Alpha')
    step_info = ('Q_average', 'Pi_step_std')

    def create_network(self):
        act_dim = self.args.acts_dims[0]
        self.pi = MLPStochasticPolicy('pi', act_dim)
        self.q1, self.q2 = MLPQValueSAC('q1'), MLPQValueSAC('q2')
        self.q1_target, self.q2_target = MLPQValueSAC('q1_target'), MLPQValueSAC('q2_target')
        self.target_pairs = [('q1_target', 'q1'), ('q2_target', 'q2')]
        self.temperature = Temperature('temperature', self.args.alpha_init)
        self.target_entropy = -float(math.prod(self.args.acts_dims))

    def create_optimizers(self):
        self.pi_optimizer = make_adam(self.args.pi_lr, 'pi_optimizer')
        self.q_optimizer = make_adam(self.args.q_lr, 'q_optimizer')
        self.alpha_optimizer = make_adam(self.args.alpha_lr, 'alpha_optimizer')
        if self.args.alpha_lr == 0:
            # A fixed temperature is never updated, but its Adam slots are still made (by an op
            # that never runs) so checkpoints hold the same variables whatever alpha_lr is.
            log_alpha = self.temperature.log_alpha
            with tf.name_scope('alpha_optimizer/'):
                self.alpha_optimizer.apply_gradients([(tf.zeros_like(log_alpha), log_alpha)])

    def act(self, obs):
        sampled, log_p, dist = self.pi(obs, self.noise_input('act_noise', obs))
        v_pi = self.min_q(obs, sampled) - self.temperature() * log_p
        return tf.tanh(dist.mean), sampled, {'Q_average': v_pi, 'Pi_step_std': dist.std}

    def min_q(self, obs, acts, target=False):
        q1, q2 = (self.q1_target, self.q2_target) if target else (self.q1, self.q2)
        return tf.minimum(q1(obs, acts), q2(obs, acts))

    def pi_losses(self, batch):
        obs = self.preprocess_obs(batch['obs'])
        action, log_p, _ = self.pi(obs, self.noise_input('pi_noise', obs))
        log_alpha = self.temperature.log_alpha
        pi_loss = tf.reduce_mean(tf.stop_gradient(tf.exp(log_alpha)) * log_p - self.min_q(obs, action))
        updates = [(pi_loss, self.pi_optimizer, get_vars('pi'))]
        if self.args.alpha_lr > 0:
            alpha_loss = -log_alpha * (tf.stop_gradient(tf.reduce_mean(log_p)) + self.target_entropy)
            updates.append((alpha_loss, self.alpha_optimizer, get_vars('temperature')))
        return updates, {'Pi_loss': pi_loss, 'Alpha': tf.exp(log_alpha)}

    def q_losses(self, batch):
        obs, obs_next = self.preprocess_obs(batch['obs']), self.preprocess_obs(batch['obs_next'])
        action_next, log_p_next, _ = self.pi(obs_next, self.noise_input('pi_next_noise', obs_next))
        v_next = self.min_q(obs_next, action_next, target=True) - self.temperature() * log_p_next
        target = tf.stop_gradient(batch['rews'] + (1.0 - batch['done']) * self.args.gamma * v_next)
        q_loss = tf.reduce_mean(tf.square(self.q1(obs, batch['acts']) - target)) \
            + tf.reduce_mean(tf.square(self.q2(obs, batch['acts']) - target))
        return [(q_loss, self.q_optimizer, get_vars(['q1', 'q2']))], {'Q_loss': q_loss}
