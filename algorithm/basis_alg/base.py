"""Machinery shared by the TensorFlow agents (twin of base_torch.py): graph, inputs, updates, checkpoints.

Each agent owns a `tf.Graph` and a `tf.compat.v1.Session`, so several agents live in one
process without sharing variables. A subclass builds its networks in `create_network`, its
optimisers in `create_optimizers`, and describes one training step as two lists of
(loss, optimiser, variables) triples built once on the input placeholders: `pi_losses` and
`q_losses`. `apply_updates` turns their gradients into one simultaneous-step op (docs/algorithms.md section 5);
`train` runs the op for both lists, `train_pi` / `train_q` the op for one (TD3 splits them).
"""
import json
import os

import numpy as np

from algorithm.checkpoint import (CHECKPOINT_PREFIX, META_FILE, CheckpointError, atomic_write, check_meta,
                                  checkpoint_meta, first_line, read_tf_meta)
from utils.tf_utils import Normalizer, get_vars, hard_update, polyak_update, tf, v1


def make_adam(lr, name, eps=1e-8):
    return v1.train.AdamOptimizer(lr, epsilon=eps, name=name)


class BaseAgent:
    train_info = ()
    step_info = ()
    hard_target_update = False  # DQN copies its target; actor-critics use polyak averaging
    update_kinds = ('train',)  # the updates the learner makes (TD3: train_q and train_pi)

    def __init__(self, args):
        self.args = args
        self.graph = tf.Graph()
        threads = getattr(args, 'threads', 0)  # 0: TF's default, all cores
        self.sess = v1.Session(graph=self.graph, config=v1.ConfigProto(
            intra_op_parallelism_threads=threads, inter_op_parallelism_threads=threads))
        with self.graph.as_default():
            if getattr(args, 'seed', None) is not None:
                v1.set_random_seed(args.seed)
            self.create_inputs()
            self.normalizer = Normalizer(args.obs_dims, self.sess) if args.obs_normalization else None
            self.target_pairs = []  # (target scope, online scope), filled by create_network
            self.create_network()
            self.create_optimizers()
            self.create_operators()
            self.saver = v1.train.Saver(max_to_keep=None)  # never prune: the caller names and keeps checkpoints
            self.sess.run(v1.global_variables_initializer())
            self.sess.run(self.target_copy_op)  # targets start as copies of the online nets
        self.graph.finalize()  # acting and training only run ops built above

    def create_network(self):
        raise NotImplementedError

    def create_optimizers(self):
        raise NotImplementedError

    # ---- inputs ---------------------------------------------------------------------------------
    def create_inputs(self):
        """Placeholders keyed like the batch dict that feeds them; images arrive as uint8."""
        obs_dtype = tf.uint8 if len(self.args.obs_dims) == 3 else tf.float32
        obs_shape = [None] + list(self.args.obs_dims)
        if self.args.discrete:
            acts = v1.placeholder(tf.int64, [None], name='acts')
        else:
            acts = v1.placeholder(tf.float32, [None] + list(self.args.acts_dims), name='acts')
        self.inputs = {
            'obs': v1.placeholder(obs_dtype, obs_shape, name='obs'),
            'obs_next': v1.placeholder(obs_dtype, obs_shape, name='obs_next'),
            'acts': acts,
            'rews': v1.placeholder(tf.float32, [None, 1], name='rews'),
            'done': v1.placeholder(tf.float32, [None, 1], name='done'),
        }

    def noise_input(self, key, batch_like):
        """Action-shaped standard normal noise sampled in the graph, unless the batch feeds `key`."""
        assert key not in self.inputs, key
        shape = tf.concat([tf.shape(batch_like)[:1], list(self.args.acts_dims)], axis=0)
        self.inputs[key] = v1.placeholder_with_default(tf.random.normal(shape), [None] + list(self.args.acts_dims),
                                                       name=key)
        return self.inputs[key]

    def feed_dict(self, batch):
        return {self.inputs[key]: value for key, value in batch.items() if key in self.inputs}

    def preprocess_obs(self, obs):
        """uint8 frames are scaled to [0, 1]; vector observations go through the normaliser."""
        if obs.dtype == tf.uint8:
            return tf.cast(obs, tf.float32) / 255.0
        return self.normalizer.normalize(obs) if self.normalizer is not None else obs

    # ---- acting ---------------------------------------------------------------------------------
    def step(self, obs, explore=False, test_info=False, noise=None):
        """Act on one unbatched observation; `noise` (standard normal) replaces the agent's own."""
        feed = {self.inputs['obs']: np.asarray(obs)[None]}
        if noise is not None and 'act_noise' in self.inputs:
            feed[self.inputs['act_noise']] = np.asarray(noise, dtype=np.float32)[None]
        action, info = self.sess.run((self.explore_action if explore else self.action,
                                      self.step_info_ops if test_info else {}), feed)
        action = action[0]
        if action.ndim == 0:  # discrete: a plain int, as the env expects
            action = int(action)
        if not test_info:
            return action
        return action, {key: value[0] for key, value in info.items()}

    def act(self, obs):
        """(action, exploring action, step info) tensors for preprocessed observations.

        Both actions are built once; `step` fetches the one it needs.
        """
        raise NotImplementedError

    # ---- training -------------------------------------------------------------------------------
    def pi_losses(self, batch):
        return [], {}

    def q_losses(self, batch):
        return [], {}

    @staticmethod
    def gradients(updates):
        """(optimiser, [(gradient, variable)]) per (loss, optimiser, variables) triple: each loss is
        differentiated over its own optimiser's variables only, so a policy loss that reads the
        critics never produces critic gradients."""
        return [(optimizer, list(zip(tf.gradients(loss, variables), variables)))
                for loss, optimizer, variables in updates]

    @staticmethod
    def apply_updates(steps, info):
        """One simultaneous-step op: every gradient from the current parameters, then every update.

        Each optimiser applies its gradients only after all gradients and reported values exist,
        so the result does not depend on the order TF schedules the updates in. Each optimiser's
        state sits under its own name scope, so checkpoint names do not depend on build order.
        """
        with tf.control_dependencies([grad for _, pairs in steps for grad, _ in pairs] + list(info.values())):
            ops = []
            for optimizer, pairs in steps:
                with tf.name_scope(optimizer.get_name() + '/'):
                    ops.append(optimizer.apply_gradients(pairs))
        return tf.group(*ops)

    def create_operators(self):
        """The acting, training and target-update ops, built once on the placeholders.

        `train`, `train_pi` and `train_q` share the losses and gradients and differ only in which
        updates (and reported values) their op waits for and applies.
        """
        self.action, self.explore_action, self.step_info_ops = self.act(self.preprocess_obs(self.inputs['obs']))
        pi_updates, pi_info = self.pi_losses(self.inputs)
        q_updates, q_info = self.q_losses(self.inputs)
        pi_steps, q_steps = self.gradients(pi_updates), self.gradients(q_updates)
        self.train_info_ops, self.train_pi_info_ops, self.train_q_info_ops = {**pi_info, **q_info}, pi_info, q_info
        self.train_op = self.apply_updates(pi_steps + q_steps, self.train_info_ops)
        self.train_pi_op = self.apply_updates(pi_steps, pi_info)
        self.train_q_op = self.apply_updates(q_steps, q_info)
        targets = [var for target, _ in self.target_pairs for var in get_vars(target)]
        sources = [var for _, source in self.target_pairs for var in get_vars(source)]
        self.target_copy_op = hard_update(targets, sources)
        self.target_update_op = self.target_copy_op if self.hard_target_update \
            else polyak_update(targets, sources, self.args.polyak)

    def train(self, batch):
        info, _ = self.sess.run((self.train_info_ops, self.train_op), self.feed_dict(batch))
        return info

    def train_pi(self, batch):
        info, _ = self.sess.run((self.train_pi_info_ops, self.train_pi_op), self.feed_dict(batch))
        return info

    def train_q(self, batch):
        info, _ = self.sess.run((self.train_q_info_ops, self.train_q_op), self.feed_dict(batch))
        return info

    def target_update(self):
        self.sess.run(self.target_update_op)

    def normalizer_update(self, batch):
        if self.normalizer is not None:
            self.normalizer.update(np.concatenate([batch['obs'], batch['obs_next']], axis=0))

    # ---- checkpoints ----------------------------------------------------------------------------
    def save_model(self, path):
        """A checkpoint directory: every global variable (networks, targets, optimiser slots,
        normaliser statistics) through tf.train.Saver, plus the metadata as JSON."""
        with atomic_write(path) as tmp_path:
            os.makedirs(tmp_path)
            self.saver.save(self.sess, os.path.join(tmp_path, CHECKPOINT_PREFIX),
                            write_meta_graph=False, write_state=False)
            with open(os.path.join(tmp_path, META_FILE), 'w') as file:
                json.dump(checkpoint_meta(self.args, 'tf'), file)

    def load_model(self, path):
        check_meta(read_tf_meta(path), checkpoint_meta(self.args, 'tf'), path)
        try:
            self.saver.restore(self.sess, os.path.join(path, CHECKPOINT_PREFIX))
        except (tf.errors.OpError, ValueError) as error:
            raise CheckpointError(f'{path}: the TF checkpoint is corrupt or does not fit this agent '
                                  f'({type(error).__name__}: {first_line(error)}); pick another checkpoint') from None
