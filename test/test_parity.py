"""Exact parity of the TensorFlow reference and the PyTorch port (project issue #4).

For every algorithm, RRD over every basis (with and without bias correction) and with and
without observation normalisation, a TF and a torch agent start from the same state (copied with
tools/weight_transfer.py), get the same batches and noise, and must agree on
- step() actions (absolute 1e-5), deterministic and with given noise, and step_info;
- every train_info value, to a relative 1e-5 (absolute 1e-5 below 1: see VALUE_ATOL);
- every parameter, target, and optimiser moment after each of 10 updates with target updates, to
  an absolute 1e-5, and the normaliser statistics to a relative 1e-5.
A failure names the update and the first tensor (or value) that diverged, and by how much.

Both backends compute in float32 with different reduction orders (TF's matmul is up to 3e-6 of
the output scale off at width 256, torch's MKL 1e-6), which is harmless except where the math
is discontinuous or ill-conditioned. Three such places are kept out of the comparison, each
explained where it is handled: Adam's very first step (make_pair), batches that put a ReLU input
within round-off of zero (smallest_preactivation), and SAC noise deep in tanh's saturation
(make_batch). Everything else runs at the agents' default flags.
"""
import copy

import numpy as np
import pytest

pytest.importorskip('tensorflow')
torch = pytest.importorskip('torch')

from algorithm import create_agent  # noqa: E402
from arguments import get_args  # noqa: E402
from tools.weight_transfer import read_tf, state_diff, tf_only_names, tf_to_torch, torch_to_tf  # noqa: E402

LOSS_RTOL, PARAM_ATOL = 1e-5, 1e-5  # the tolerances
# Losses such as Pi_loss = -mean Q and R_loss are means of O(1) terms that cancel to 0.01-0.3, so
# they carry the matmuls' absolute round-off (2e-6 to 8e-6 measured): below 1, compare absolutely.
VALUE_ATOL = 1e-5
UPDATES = 10
WARMUP = 3  # TF-only updates before the state is copied (see make_pair)
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


@pytest.fixture(autouse=True)
def no_env_backend(monkeypatch):
    monkeypatch.delenv('USE_PYTORCH', raising=False)


def make_pair(name, warmup=WARMUP):
    """A TF and a torch agent of one configuration; the TF one takes `warmup` updates of its own,
    then the torch one gets its whole state (networks, targets, normaliser, optimiser moments).

    Starting mid-training matters for Adam: its first step is lr * g / (|g| + eps / sqrt(1 - beta2))
    elementwise, which turns the ~1e-8 float32 round-off of a gradient element near 3e-7 into a
    ~2e-5 parameter difference (measured on DDPG's critic, q_lr 1e-3); later steps divide by the
    running second moment and are well conditioned.
    """
    argv, obs_dims, acts_dims = CASES[name]
    agents = []
    for use_pytorch in (False, True):
        args = get_args(argv + ['--use_pytorch', str(use_pytorch)])
        args.obs_dims, args.acts_dims, args.cuda = list(obs_dims), list(acts_dims), False
        agents.append(create_agent(args))
    tf_agent, torch_agent = agents
    for update in range(1, warmup + 1):
        run_update(tf_agent, make_batch(tf_agent.args, seed=10_000 + update), update)
    tf_to_torch(tf_agent, torch_agent)
    return tf_agent, torch_agent


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


def first_divergence(diffs, atol):
    """A message naming the first tensor (creation order) beyond `atol`, or None."""
    bad = [row for row in diffs if beyond_tolerance(*row, atol)]
    if not bad:
        return None
    name, abs_diff, rel_diff = bad[0]
    worst = max(bad, key=lambda row: row[1])
    return (f'first diverging tensor {name}: max abs diff {abs_diff:.3g} (rel {rel_diff:.3g}); '
            f'{len(bad)} of {len(diffs)} tensors beyond {atol:g}, worst {worst[0]} ({worst[1]:.3g})')


def value_divergence(tf_values, torch_values, rtol, atol=VALUE_ATOL):
    """A message naming the first key whose values differ beyond rtol (and the atol floor), or None."""
    assert set(tf_values) == set(torch_values), (sorted(tf_values), sorted(torch_values))
    for key in tf_values:
        a, b = np.asarray(tf_values[key], np.float64), np.asarray(torch_values[key], np.float64)
        if not np.allclose(a, b, rtol=rtol, atol=atol):
            diff = np.abs(a - b).max()
            return f'{key}: TF {a.ravel()[:4]} torch {b.ravel()[:4]} (abs {diff:.3g}, rel {diff / np.abs(a).max():.3g})'
    return None


def check_steps(tf_agent, torch_agent, obs, when):
    """Deterministic actions, and exploring ones with given noise (continuous control), and step_info."""
    args = tf_agent.args
    modes = [dict(explore=False)]
    if not args.discrete:  # SAC's step_info evaluates a sampled action even when acting deterministically
        noise = truncated_normal(np.random.RandomState(7), args.acts_dims)
        modes = [dict(explore=False, noise=noise), dict(explore=True, noise=noise)]
    for mode in modes:
        (tf_action, tf_info), (torch_action, torch_info) = (agent.step(obs, test_info=True, **mode)
                                                            for agent in (tf_agent, torch_agent))
        if args.discrete:
            assert tf_action == torch_action, f'{when}: greedy actions differ: TF {tf_action}, torch {torch_action}'
        message = value_divergence({'action': tf_action}, {'action': torch_action}, rtol=0.0, atol=PARAM_ATOL) \
            or value_divergence(tf_info, torch_info, LOSS_RTOL)
        assert message is None, f'{when}, step({mode}): {message}'


# ---- tests -----------------------------------------------------------------------------------------
def assert_copied_exactly(tf_agent, torch_agent):
    """Every tensor bit for bit; the Adam step count as TF's beta powers, recomputed as beta^(t+1),
    to float32 round-off of TF's running product."""
    for name, abs_diff, rel_diff in state_diff(tf_agent, torch_agent):
        assert rel_diff < 1e-6 if name.endswith('_power') else abs_diff == 0.0, (name, abs_diff)


@pytest.mark.parametrize('name', list(CASES))
def test_parity(name):
    tf_agent, torch_agent = make_pair(name)
    assert_copied_exactly(tf_agent, torch_agent)
    obs = make_batch(tf_agent.args, seed=99)['obs'][0]
    check_steps(tf_agent, torch_agent, obs, 'before training')
    for update in range(1, UPDATES + 1):
        batch = well_conditioned_batch(torch_agent, update)
        tf_info, torch_info = (run_update(agent, batch, update) for agent in (tf_agent, torch_agent))
        message = value_divergence(tf_info, torch_info, LOSS_RTOL)
        assert message is None, f'update {update}: train_info {message}'
        message = first_divergence(state_diff(tf_agent, torch_agent), PARAM_ATOL)
        assert message is None, f'after update {update}: {message}'
    check_steps(tf_agent, torch_agent, obs, f'after {UPDATES} updates')


@pytest.mark.parametrize('name', ['sac-norm', 'rrd-td3-bc', 'dqn-double-dueling-rmsprop', 'rrd-dqn-image'])
def test_transfer_round_trip(name):
    """torch (trained) -> TF -> a fresh torch agent gives back every tensor and step count exactly;
    TF -> torch -> a fresh TF agent likewise (TF-only RMSProp momentum aside)."""
    tf_agent, torch_agent = make_pair(name)
    for update in (1, 2):
        batch = make_batch(tf_agent.args, seed=update)
        run_update(tf_agent, batch, update)
        run_update(torch_agent, batch, update)
    other_tf, other_torch = make_pair(name, warmup=0)
    torch_to_tf(torch_agent, other_tf)
    tf_to_torch(other_tf, other_torch)
    for key, obj in torch_agent.checkpoint_state().items():
        expected, got = obj.state_dict(), getattr(other_torch, key).state_dict()
        if 'param_groups' in expected:  # AdamTF recomputes 'eps' from 'tf_eps' at every step
            assert [{**g, 'eps': None} for g in expected['param_groups']] \
                == [{**g, 'eps': None} for g in got['param_groups']], key
            expected, got = expected['state'], got['state']
            expected = {(i, slot): value for i, state in expected.items() for slot, value in state.items()}
            got = {(i, slot): value for i, state in got.items() for slot, value in state.items()}
        assert expected.keys() == got.keys(), key
        for item in expected:
            assert torch.equal(expected[item], got[item]), (key, item)

    tf_to_torch(tf_agent, other_torch)
    torch_to_tf(other_torch, other_tf)
    skip = tf_only_names(other_torch, other_tf)
    want, got = read_tf(tf_agent), read_tf(other_tf)
    for key in want:
        if key.endswith('_power'):  # recomputed as beta^(t+1): within float32 round-off of TF's running product
            np.testing.assert_allclose(got[key], want[key], rtol=1e-6, err_msg=key)
        elif key in skip:
            assert not got[key].any(), key
        else:
            np.testing.assert_array_equal(got[key], want[key], err_msg=key)


def test_mismatched_agents_are_refused():
    from tools.weight_transfer import TransferError
    tf_agent, _ = make_pair('sac', warmup=0)
    _, torch_agent = make_pair('rrd-sac', warmup=0)
    with pytest.raises(TransferError, match='reward_net'):
        tf_to_torch(tf_agent, torch_agent)
    with pytest.raises(TransferError, match='r_optimizer'):
        torch_to_tf(torch_agent, tf_agent)
