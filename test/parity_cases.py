"""The parity suites' configurations, batches and reports, shared by test_parity.py (the TF
reference against the PyTorch port) and test_cuda_parity.py (the port on CUDA against the port on
the CPU). Needs torch, not TensorFlow: the CUDA suite runs where TF is not installed.
"""
import copy

import numpy as np
import torch

LOSS_RTOL, PARAM_ATOL = 1e-5, 1e-5  # the tolerances
# Losses such as Pi_loss = -mean Q and R_loss are means of O(1) terms that cancel to 0.01-0.3, so
# they carry the matmuls' absolute round-off (2e-6 to 8e-6 measured): below 1, compare absolutely.
VALUE_ATOL = 1e-5
UPDATES = 10
WARMUP = 3  # updates of the reference agent alone before its state is copied (see make_pair)
KINK_MARGIN = 1e-5  # see smallest_preactivation
F32 = np.float32

CONTINUOUS = (['--env', 'Hopper-v2'], [11], [3])
DISCRETE = (['--env', 'CartPole-v1'], [4], [2])
# Images are 12x12x4, not Atari's 84x84: the conv torso and the kernel layouts are the same at any
# size (12 -> 3 -> 2 -> 2 even has TF's asymmetric 'SAME' padding, like 84 -> 21 -> 11), while
# 84x84 has ~10^5 ReLU units per batch and fewer than 1 batch in 30 is free of round-off ties at
# a kink (see smallest_preactivation).
IMAGES = (['--env', 'Pong'], [12, 12, 4], [6])


def cases():
    """(id, argv, obs_dims, acts_dims): every algorithm x RRD options x obs normalisation."""
    out = []
    for norm in ('False', 'True'):
        norm_flags = ['--obs_normalization', norm]
        suffix = '-norm' if norm == 'True' else ''
        for alg, (env, obs, acts) in (('ddpg', CONTINUOUS), ('td3', CONTINUOUS), ('sac', CONTINUOUS),
                                      ('dqn', DISCRETE)):
            out.append((alg + suffix, env + ['--alg', alg] + norm_flags, obs, acts))
            for bias in ('False', 'True'):
                out.append((f'rrd-{alg}{"-bc" if bias == "True" else ""}{suffix}',
                            env + ['--alg', 'rrd', '--basis_alg', alg, '--rrd_bias_correction', bias] + norm_flags,
                            obs, acts))
        out.append(('dqn-double-dueling-rmsprop' + suffix, DISCRETE[0] + [
            '--alg', 'dqn', '--double', 'True', '--dueling', 'True', '--optimizer', 'rmsprop'] + norm_flags,
            *DISCRETE[1:]))
    for alg, (env, obs, acts) in (('ddpg', CONTINUOUS), ('td3', CONTINUOUS), ('sac', CONTINUOUS), ('dqn', DISCRETE)):
        out.append((f'ircr-{alg}', env + ['--alg', 'ircr', '--basis_alg', alg], obs, acts))  # IRCR is its buffer
    out.append(('sac-fixed-alpha', CONTINUOUS[0] + ['--alg', 'sac', '--alpha_lr', '0', '--alpha_init', '0.1'],
                *CONTINUOUS[1:]))
    env, obs, acts = IMAGES  # images are never normalised (uint8 frames are scaled to [0, 1])
    out.append(('dqn-image-double-dueling', env + ['--alg', 'dqn', '--double', 'True', '--dueling', 'True'], obs, acts))
    for bias in ('False', 'True'):
        out.append((f'rrd-dqn-image{"-bc" if bias == "True" else ""}',
                    env + ['--alg', 'rrd', '--rrd_bias_correction', bias], obs, acts))
    return out


CASES = {case[0]: case[1:] for case in cases()}


def make_batch(args, seed):
    """B=16, E=2, K=4 (images B=4, K=2), with every noise key fed.

    SAC's noise is a standard normal truncated to +-1.5: TF's tanh (Eigen's fast approximation)
    is up to 3e-7 off near saturation where torch's is within 3e-8, and log(1 - tanh(u)^2 + 1e-6)
    turns that into differences of 3e-5 at |u| = 3 and 0.5 at |u| = 8 (measured), so Q_loss
    differs by ~1e-4 relative with untruncated noise. That is the two tanh implementations, not
    the agents.
    """
    rng = np.random.RandomState(seed)
    images = len(args.obs_dims) == 3
    b, episodes, k, act_dim = (4, 2, 2, args.acts_dims[0]) if images else (16, 2, 4, args.acts_dims[0])

    def obs(*lead):
        if images:
            return rng.randint(0, 256, size=list(lead) + list(args.obs_dims)).astype(np.uint8)
        return (rng.normal(size=list(lead) + list(args.obs_dims)) * 2 + 1).astype(F32)

    def acts(*lead):
        if args.discrete:
            return rng.randint(0, act_dim, size=lead).astype(np.int64)
        return rng.uniform(-1, 1, size=list(lead) + [act_dim]).astype(F32)

    batch = {'obs': obs(b), 'obs_next': obs(b), 'acts': acts(b), 'rews': rng.normal(size=(b, 1)).astype(F32),
             'done': (rng.uniform(size=(b, 1)) < 0.2).astype(F32),
             'pi_noise': truncated_normal(rng, (b, act_dim)), 'pi_next_noise': truncated_normal(rng, (b, act_dim)),
             'target_noise': rng.normal(size=(b, act_dim)).astype(F32)}
    if args.alg == 'rrd':
        batch.update({'rrd_obs': obs(episodes, k), 'rrd_obs_next': obs(episodes, k), 'rrd_acts': acts(episodes, k),
                      'rrd_rews': rng.normal(size=(episodes, 1)).astype(F32),
                      'rrd_var_coef': np.array([[1 - k / 10], [0.5]], F32)})
    return batch


def truncated_normal(rng, shape, limit=1.5):
    return np.clip(rng.normal(size=shape), -limit, limit).astype(F32)


def run_update(agent, batch, update):
    """One learner update (normaliser, train or TD3's train_q + delayed train_pi on a batch of its
    own) and, every second update, a target update; returns the train_info as floats."""
    args = agent.args
    agent.normalizer_update(batch)  # a no-op without --obs_normalization
    if (args.basis_alg if args.alg in ('rrd', 'ircr') else args.alg) == 'td3':
        info = agent.train_q(batch)
        if update % args.pi_delay_freq == 0:
            info.update(agent.train_pi({**batch, 'obs': batch['obs'][::-1].copy()}))
    else:
        info = agent.train(batch)
    if update % 2 == 0:
        agent.target_update()
    return {key: float(value) for key, value in info.items()}


def smallest_preactivation(torch_agent, batch, update):
    """The smallest |output| / rms(output) of any dense or conv layer during this update, on a copy.

    An output within float32 round-off of zero sits on a ReLU kink: the backends' matmuls sum in
    different orders (TF's is up to 3e-6 of the output scale off at width 256, torch's MKL 1e-6),
    so one may pass the unit and the other block it, and their gradients then legitimately differ
    by one sample's share (5e-3 in an Adam moment, 1e-4 in a parameter a few updates later,
    measured on RRD-SAC). Exact zeros (a unit whose inputs are all zero) are exact in both.
    """
    probe, smallest = copy.deepcopy(torch_agent), [np.inf]
    probe.traced_losses = None  # eager: a replay runs no module's forward, so no hook would fire

    def record(module, inputs, output):
        magnitude = output.detach().abs()
        nonzero = magnitude[magnitude > 0]
        if nonzero.numel():
            smallest[0] = min(smallest[0], float(nonzero.min() / magnitude.square().mean().sqrt()))

    for module in probe.checkpoint_state().values():
        if isinstance(module, torch.nn.Module):
            for layer in module.modules():
                if isinstance(layer, (torch.nn.Linear, torch.nn.Conv2d)):
                    layer.register_forward_hook(record)
    run_update(probe, batch, update)
    return smallest[0]


def well_conditioned_batch(torch_agent, update):
    """The first batch (seeds update * 1000, ...) with no layer output within KINK_MARGIN of zero,
    relative to the layer's scale."""
    for seed in range(update * 1000, update * 1000 + 100):
        batch = make_batch(torch_agent.args, seed)
        if smallest_preactivation(torch_agent, batch, update) >= KINK_MARGIN:
            return batch
    raise AssertionError(f'no well-conditioned batch for update {update} in 100 tries')


# ---- divergence reports ----------------------------------------------------------------------------
def beyond_tolerance(name, abs_diff, rel_diff, atol):
    """Parameters, targets and optimiser state: absolute. Normaliser sums grow with the sample
    count (sum_sqr is ~100 after one update, where a float32 ulp is 1.5e-5), so its statistics are
    compared relatively, with the same 1e-5."""
    return rel_diff > atol if name.startswith('normalizer/') else abs_diff > atol


def first_divergence(diffs, atol=PARAM_ATOL):
    """A message naming the first tensor (creation order) beyond `atol`, or None."""
    bad = [row for row in diffs if beyond_tolerance(*row, atol)]
    if not bad:
        return None
    name, abs_diff, rel_diff = bad[0]
    worst = max(bad, key=lambda row: row[1])
    return (f'first diverging tensor {name}: max abs diff {abs_diff:.3g} (rel {rel_diff:.3g}); '
            f'{len(bad)} of {len(diffs)} tensors beyond {atol:g}, worst {worst[0]} ({worst[1]:.3g})')


def value_divergence(want, got, rtol, atol=VALUE_ATOL, labels=('TF', 'torch')):
    """A message naming the first key whose values differ beyond rtol (and the atol floor), or None;
    `want` are the reference's values (labels[0]), `got` the other agent's."""
    assert set(want) == set(got), (sorted(want), sorted(got))
    for key in want:
        a, b = np.asarray(want[key], np.float64), np.asarray(got[key], np.float64)
        if not np.allclose(a, b, rtol=rtol, atol=atol):
            diff = np.abs(a - b).max()
            return (f'{key}: {labels[0]} {a.ravel()[:4]} {labels[1]} {b.ravel()[:4]} '
                    f'(abs {diff:.3g}, rel {diff / np.abs(a).max():.3g})')
    return None


def check_steps(reference, agent, obs, when, labels=('TF', 'torch')):
    """Deterministic actions, and exploring ones with given noise (continuous control), and step_info."""
    args = reference.args
    modes = [dict(explore=False)]
    if not args.discrete:  # SAC's step_info evaluates a sampled action even when acting deterministically
        noise = truncated_normal(np.random.RandomState(7), args.acts_dims)
        modes = [dict(explore=False, noise=noise), dict(explore=True, noise=noise)]
    for mode in modes:
        (want_action, want_info), (action, info) = (each.step(obs, test_info=True, **mode) for each in (reference, agent))
        if args.discrete:
            assert want_action == action, f'{when}: greedy actions differ: {labels[0]} {want_action}, {labels[1]} {action}'
        message = value_divergence({'action': want_action}, {'action': action}, 0.0, PARAM_ATOL, labels) \
            or value_divergence(want_info, info, LOSS_RTOL, labels=labels)
        assert message is None, f'{when}, step({mode}): {message}'
