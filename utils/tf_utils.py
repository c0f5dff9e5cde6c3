"""TensorFlow (tf.compat.v1 graph mode) building blocks shared by every TF agent (twin of torch_utils.py).

Layers are built from `tf.compat.v1.get_variable` (Keras 3 removed tf.compat.v1.layers) inside
variable scopes named like the torch module paths, so `pi/net/0/kernel` is torch's
`pi.net.0.weight` (transposed: TF dense kernels are [in, out], conv kernels HWIO). Importing this
module switches TF to graph mode and quiets its start-up logging.
"""
import contextlib
import logging
import math
import os
import sys
import tempfile

import numpy as np

# TF's start-up lines are absl logs its C++ libraries write to fd 2 while they load (twice: two
# libraries), before TF_CPP_MIN_LOG_LEVEL or any Python setting applies to them. Only these lines
# are dropped; oneDNN itself stays on (TF_ENABLE_ONEDNN_OPTS is TF's fast CPU path).
IMPORT_NOISE = ('All log messages before absl::InitializeLog() is called',
                'oneDNN custom operations are on')


@contextlib.contextmanager
def filtered_stderr(noise):
    """Capture what is written to fd 2 in the block, then pass on every line not containing one of `noise`."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            for line in capture.read().decode(errors='replace').splitlines(keepends=True):
                if not any(text in line for text in noise):
                    sys.stderr.write(line)


os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '1')  # TF's C++ INFO lines after start-up
with filtered_stderr(IMPORT_NOISE):
    import tensorflow as tf

tf.get_logger().setLevel(logging.WARNING)
logging.getLogger('absl').setLevel(logging.WARNING)
tf.compat.v1.disable_eager_execution()

v1 = tf.compat.v1


class Network:
    """A named variable scope whose variables are made on the first call and reused on later ones,
    so a network applied to several inputs (s and s') has one set of weights, like an nn.Module."""

    def __init__(self, name):
        self.name = name

    def scope(self):
        return v1.variable_scope(self.name, reuse=v1.AUTO_REUSE)


def get_vars(scope):
    """Trainable variables under a scope (or a list of scopes), in creation order.

    The trailing '/' keeps `q1` from also matching `q1_target`.
    """
    scopes = scope if isinstance(scope, (list, tuple)) else [scope]
    return [var for name in scopes for var in v1.get_collection(v1.GraphKeys.TRAINABLE_VARIABLES, scope=name + '/')]


def dense(inputs, units, name):
    """Fully connected layer: Glorot-uniform kernel [in, units], zero bias."""
    with v1.variable_scope(name):
        kernel = v1.get_variable('kernel', [int(inputs.shape[-1]), units], initializer=v1.glorot_uniform_initializer())
        bias = v1.get_variable('bias', [units], initializer=v1.zeros_initializer())
    return tf.matmul(inputs, kernel) + bias


def conv2d(inputs, filters, kernel_size, stride, name):
    """NHWC convolution with padding='SAME': Glorot-uniform HWIO kernel, zero bias."""
    with v1.variable_scope(name):
        kernel = v1.get_variable('kernel', [kernel_size, kernel_size, int(inputs.shape[-1]), filters],
                                 initializer=v1.glorot_uniform_initializer())
        bias = v1.get_variable('bias', [filters], initializer=v1.zeros_initializer())
    return tf.nn.conv2d(inputs, kernel, strides=[1, stride, stride, 1], padding='SAME') + bias


def mlp(inputs, hidden, out_dim, name):
    """Dense(h) + ReLU for each hidden size, then a linear Dense(out_dim).

    Layers are scoped '0', '2', ... like the indices of torch's nn.Sequential (ReLUs take the odd ones).
    """
    with v1.variable_scope(name):
        for index, units in enumerate(hidden):
            inputs = tf.nn.relu(dense(inputs, units, str(2 * index)))
        return dense(inputs, out_dim, str(2 * len(hidden)))


def conv_torso(images, name='torso'):
    """The DQN (Nature) conv stack on channels-last images, flattened in NHWC order (torch's ConvTorso)."""
    with v1.variable_scope(name), v1.variable_scope('convs'):
        features = tf.nn.relu(conv2d(images, 32, 8, 4, '0'))
        features = tf.nn.relu(conv2d(features, 64, 4, 2, '2'))
        features = tf.nn.relu(conv2d(features, 64, 3, 1, '4'))
    return tf.reshape(features, [-1, int(np.prod(features.shape[1:]))])


class RandomNormal:
    """Diagonal Gaussian parameterised by mean and log-std (std floored), as in the torch twin."""

    def __init__(self, mean, log_std, std_floor=0.0):
        self.mean, self.log_std = mean, log_std
        self.std = tf.maximum(tf.exp(log_std), std_floor) if std_floor > 0 else tf.exp(log_std)

    def sample(self, noise=None):
        if noise is None:
            noise = tf.random.normal(tf.shape(self.mean))
        return self.mean + self.std * noise

    def log_p(self, x):
        z = (x - self.mean) / self.std
        return tf.reduce_sum(-0.5 * math.log(2.0 * math.pi) - self.log_std - 0.5 * z * z, axis=-1, keepdims=True)

    def entropy(self):
        return tf.reduce_sum(self.log_std + 0.5 * math.log(2.0 * math.pi * math.e), axis=-1, keepdims=True)

    def kl(self, other):
        var, other_var = tf.square(self.std), tf.square(other.std)
        return tf.reduce_sum(other.log_std - self.log_std
                             + (var + tf.square(self.mean - other.mean)) / (2.0 * other_var) - 0.5,
                             axis=-1, keepdims=True)


class Normalizer:
    """Running observation normaliser (docs/algorithms.md section 4); its statistics are checkpointed variables.

    The statistics live in non-trainable float32 variables under `normalizer/` (torch's buffers
    of the same names); `update` feeds a placeholder and runs one op that adds to the sums and
    then recomputes mean and std from the new sums.
    """

    def __init__(self, shape, sess, eps_std=1e-2, norm_clip=5.0):
        self.sess, self.eps_std, self.norm_clip = sess, eps_std, norm_clip
        shape = list(shape)
        with v1.variable_scope('normalizer'):
            self.sum = v1.get_variable('sum', shape, initializer=v1.zeros_initializer(), trainable=False)
            self.sum_sqr = v1.get_variable('sum_sqr', shape, initializer=v1.zeros_initializer(), trainable=False)
            self.cnt = v1.get_variable('cnt', [1], initializer=v1.zeros_initializer(), trainable=False)
            self.mean = v1.get_variable('mean', shape, initializer=v1.zeros_initializer(), trainable=False)
            self.std = v1.get_variable('std', shape, initializer=v1.ones_initializer(), trainable=False)
            self.inputs = v1.placeholder(tf.float32, [None] + shape, name='inputs')
            # assign_add returns the updated value, so mean and std are computed from the new sums.
            total = self.sum.assign_add(tf.reduce_sum(self.inputs, axis=0))
            total_sqr = self.sum_sqr.assign_add(tf.reduce_sum(tf.square(self.inputs), axis=0))
            cnt = self.cnt.assign_add(tf.cast(tf.shape(self.inputs)[:1], tf.float32))
            mean = total / cnt
            std = tf.maximum(tf.sqrt(tf.maximum(total_sqr / cnt - tf.square(mean), 0.0)), eps_std)
            self.update_op = tf.group(self.mean.assign(mean), self.std.assign(std))

    def update(self, inputs):
        inputs = np.asarray(inputs, dtype=np.float32).reshape([-1] + self.inputs.shape.as_list()[1:])
        self.sess.run(self.update_op, {self.inputs: inputs})

    def normalize(self, inputs):
        return tf.clip_by_value((inputs - self.mean) / self.std, -self.norm_clip, self.norm_clip)


def polyak_update(targets, sources, polyak):
    """Op: theta_t <- polyak * theta_t + (1 - polyak) * theta, for all variable pairs.

    Written as theta_t + (1 - polyak) (theta - theta_t), the form torch's lerp computes.
    """
    return tf.group(*[target.assign_add((1.0 - polyak) * (source - target))
                      for target, source in zip(targets, sources)])


def hard_update(targets, sources):
    """Op: copy every source variable into its target."""
    return tf.group(*[target.assign(source) for target, source in zip(targets, sources)])


def select_action_values(values, acts):
    """values[b, acts[b]] as [B, 1]: sum(values * onehot(acts)), torch's gather."""
    onehot = tf.one_hot(acts, int(values.shape[-1]), dtype=values.dtype)
    return tf.reduce_sum(values * onehot, axis=-1, keepdims=True)
