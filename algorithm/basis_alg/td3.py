"""TD3 in TensorFlow (twin of td3_torch.py); docs/algorithms.md section 5. The learner calls train_q every
update and train_pi every pi_delay_freq-th update, each on its own batch."""
from algorithm.basis_alg.base import make_adam
from algorithm.basis_alg.ddpg import DDPG, MLPPolicy
from algorithm.basis_alg.sac import MLPQValueSAC
from utils.tf_utils import get_vars, tf


class TD3(DDPG):
    """DDPG's acting and policy step, with twin critics and target policy smoothing."""

    train_info = ('Pi_loss', 'Q_loss')
    update_kinds = ('train_q', 'train_pi')

    def create_network(self):
        act_dim = self.args.acts_dims[0]
        self.pi = MLPPolicy('pi', act_dim, hidden=(256, 256))
        self.q1, self.q2 = MLPQValueSAC('q1'), MLPQValueSAC('q2')
        self.pi_target = MLPPolicy('pi_target', act_dim, hidden=(256, 256))
        self.q1_target, self.q2_target = MLPQValueSAC('q1_target'), MLPQValueSAC('q2_target')
        self.target_pairs = [('pi_target', 'pi'), ('q1_target', 'q1'), ('q2_target', 'q2')]

    def create_optimizers(self):
        self.pi_optimizer = make_adam(self.args.pi_lr, 'pi_optimizer')
        self.q_optimizer = make_adam(self.args.q_lr, 'q_optimizer')

    def policy_value(self, obs, acts):
        return self.q1(obs, acts)

    def q_losses(self, batch):
        obs, obs_next = self.preprocess_obs(batch['obs']), self.preprocess_obs(batch['obs_next'])
        pi_next = self.pi_target(obs_next)
        noise = self.noise_input('target_noise', obs_next)
        smoothing = tf.clip_by_value(noise * self.args.pi_t_std, -self.args.pi_t_clip, self.args.pi_t_clip)
        action_next = tf.clip_by_value(pi_next + smoothing, -1.0, 1.0)
        q_next = tf.minimum(self.q1_target(obs_next, action_next), self.q2_target(obs_next, action_next))
        target = tf.stop_gradient(batch['rews'] + (1.0 - batch['done']) * self.args.gamma * q_next)
        q_loss = tf.reduce_mean(tf.square(self.q1(obs, batch['acts']) - target)) \
            + tf.reduce_mean(tf.square(self.q2(obs, batch['acts']) - target))
        return [(q_loss, self.q_optimizer, get_vars(['q1', 'q2']))], {'Q_loss': q_loss}
