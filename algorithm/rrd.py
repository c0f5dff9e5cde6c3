"""Randomized Return Decomposition in TensorFlow (twin of rrd_torch.py); docs/algorithms.md section 7.

`RRD(basis_cls)` returns the basis agent class extended with a proxy reward network. The
reward-net update joins the critic step (`q_losses`, so it runs in `train` and TD3's
`train_q`), and the critic learns from r_theta(s, a, s') computed before that update: the
proxy reward is a gradient-free input of the critic loss, which every update op waits for.
"""
from algorithm.basis_alg.base import make_adam
from utils.tf_utils import Network, conv_torso, get_vars, mlp, select_action_values, tf, v1


class MLPRewardNet(Network):
    """r(s, a, s') on concat(obs, act, obs - obs_next); discrete actions select a head output."""

    def __init__(self, name, act_dim, discrete=False):
        super().__init__(name)
        self.act_dim, self.discrete = act_dim, discrete

    def __call__(self, obs, acts, obs_next):
        with self.scope():
            if self.discrete:
                values = mlp(tf.concat([obs, obs - obs_next], axis=-1), (256, 256), self.act_dim, 'net')
                return select_action_values(values, acts)
            return mlp(tf.concat([obs, acts, obs - obs_next], axis=-1), (256, 256), 1, 'net')


class ConvRewardNet(Network):
    """r(s, a, s') on images: concat(obs, obs - obs_next) on channels, conv torso, one output per action."""

    def __init__(self, name, n_actions):
        super().__init__(name)
        self.n_actions = n_actions

    def __call__(self, obs, acts, obs_next):
        with self.scope():
            features = conv_torso(tf.concat([obs, obs - obs_next], axis=-1))
            return select_action_values(mlp(features, (512,), self.n_actions, 'head'), acts)


class RRDMixin:
    def __init__(self, args):
        super().__init__(args)
        self.train_info = self.train_info + (('R_loss', 'R_var') if args.rrd_bias_correction else ('R_loss',))

    def create_inputs(self):
        """Adds the reward-regression batch: [episodes, samples, ...] per key, [episodes, 1] per episode."""
        super().create_inputs()
        for key in ('obs', 'obs_next', 'acts'):
            basis = self.inputs[key]
            self.inputs['rrd_' + key] = v1.placeholder(basis.dtype, [None, None] + basis.shape.as_list()[1:],
                                                       name='rrd_' + key)
        self.inputs['rrd_rews'] = v1.placeholder(tf.float32, [None, 1], name='rrd_rews')
        if self.args.rrd_bias_correction:
            self.inputs['rrd_var_coef'] = v1.placeholder(tf.float32, [None, 1], name='rrd_var_coef')

    def create_network(self):
        super().create_network()
        obs_dims, acts_dims = self.args.obs_dims, self.args.acts_dims
        if len(obs_dims) == 3:
            self.reward_net = ConvRewardNet('reward_net', acts_dims[0])
        else:
            self.reward_net = MLPRewardNet('reward_net', acts_dims[0], self.args.discrete)

    def create_optimizers(self):
        super().create_optimizers()
        self.r_optimizer = make_adam(self.args.r_lr, 'r_optimizer')

    def proxy_rewards(self, batch):
        """r_theta(s, a, s') of the basis batch: the critic's reward, without gradient."""
        return tf.stop_gradient(self.reward_net(self.preprocess_obs(batch['obs']), batch['acts'],
                                                self.preprocess_obs(batch['obs_next'])))

    def reward_losses(self, batch):
        """The return-decomposition loss on the RRD batch."""
        episodes, samples = tf.shape(batch['rrd_obs'])[0], tf.shape(batch['rrd_obs'])[1]

        def flatten(x):
            return tf.reshape(x, [-1] + x.shape.as_list()[2:])

        rrd_r = self.reward_net(self.preprocess_obs(flatten(batch['rrd_obs'])), flatten(batch['rrd_acts']),
                                self.preprocess_obs(flatten(batch['rrd_obs_next'])))
        rrd_r = tf.reshape(rrd_r, [episodes, samples])
        rrd_r_mean = tf.reduce_mean(rrd_r, axis=1, keepdims=True)
        r_loss = tf.reduce_mean(tf.square(rrd_r_mean - batch['rrd_rews']))
        info = {'R_loss': r_loss}
        if self.args.rrd_bias_correction:
            samples = tf.cast(samples, tf.float32)
            r_var = tf.reduce_sum(tf.square(rrd_r - rrd_r_mean), axis=1, keepdims=True) / (samples - 1.0)
            info['R_var'] = tf.reduce_mean(r_var)
            r_loss = r_loss - tf.reduce_mean(r_var * batch['rrd_var_coef'] / samples)
        return [(r_loss, self.r_optimizer, get_vars('reward_net'))], info

    def create_operators(self):
        super().create_operators()
        self.proxy_reward_op = self.proxy_rewards(self.inputs)[:, 0]

    def proxy_reward(self, obs, acts, obs_next):
        """r_theta(s, a, s') as a float array [T], for diagnostics: the critic's reward input,
        from arrays shaped and typed as the buffer samples them."""
        return self.sess.run(self.proxy_reward_op, self.feed_dict({'obs': obs, 'acts': acts, 'obs_next': obs_next}))

    def critic_losses(self, batch):
        """The basis algorithm's critic losses on the proxy rewards."""
        return super().q_losses({**batch, 'rews': self.proxy_rewards(batch)})

    def q_losses(self, batch):
        q_updates, q_info = self.critic_losses(batch)
        r_updates, r_info = self.reward_losses(batch)
        return q_updates + r_updates, {**q_info, **r_info}


def RRD(basis_cls):
    """The RRD agent class over a TF basis algorithm class."""
    return type(f'RRD{basis_cls.__name__}', (RRDMixin, basis_cls), {})
