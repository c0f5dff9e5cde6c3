"""Exact parity of the TensorFlow reference and the PyTorch port (project issue #4).

For every algorithm, RRD over every basis (with and without bias correction) and with and
without observation normalisation, a TF and a torch agent start from the same state (copied with
tools/weight_transfer.py), get the same batches and noise, and must agree on
- step() actions, deterministic and with given noise, and step_info;
- every train_info value, to a relative 1e-5;
- every state tensor (networks, targets, normaliser statistics, optimiser moments) after each of
  10 updates with target updates, to an absolute 1e-5.
Failures name the first tensor (or loss) that diverged, the update, and by how much.
"""
import numpy as np
import pytest

pytest.importorskip('tensorflow')
torch = pytest.importorskip('torch')

from algorithm import create_agent  # noqa: E402
from arguments import get_args  # noqa: E402
from tools.weight_transfer import read_tf, state_diff, tf_only_names, tf_to_torch, torch_to_tf  # noqa: E402

LOSS_RTOL, PARAM_ATOL = 1e-5, 1e-5  # the tolerances
VALUE_ATOL = 1e-6  # floor for values near zero, where a relative tolerance means nothing in float32
UPDATES = 10
F32 = np.float32

CONTINUOUS = (['--env', 'Hopper-v2'], [11], [3])
DISCRETE = (['--env', 'CartPole-v1'], [4], [2])
IMAGES = (['--env', 'Pong'], [84, 84, 4], [6])


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


def make_pair(name):
    """A TF and a torch agent of one configuration, the torch one holding the TF one's state."""
    argv, obs_dims, acts_dims = CASES[name]
    agents = []
    for use_pytorch in (False, True):
        args = get_args(argv + ['--use_pytorch', str(use_pytorch)])
        args.obs_dims, args.acts_dims, args.cuda = list(obs_dims), list(acts_dims), False
        agents.append(create_agent(args))
    tf_to_torch(*agents)
    return agents


def make_batch(args, seed):
    """B=16, E=2, K=4 (images B=8, K=2), with every noise key fed (standard normal)."""
    rng = np.random.RandomState(seed)
    images = len(args.obs_dims) == 3
    b, episodes, k, act_dim = (8, 2, 2, args.acts_dims[0]) if images else (16, 2, 4, args.acts_dims[0])

    def obs(*lead):
        if images:
            return rng.randint(0, 256, size=list(lead) + list(args.obs_dims)).astype(np.uint8)
        return (rng.normal(size=list(lead) + list(args.obs_dims)) * 2 + 1).astype(F32)

    def acts(*lead):
        if args.discrete:
            return rng.randint(0, act_dim, size=lead).astype(np.int64)
        return rng.uniform(-1, 1, size=list(lead) + [act_dim]).astype(F32)

    batch = {'obs': obs(b), 'obs_next': obs(b), 'acts': acts(b), 'rews': rng.normal(size=(b, 1)).astype(F32),
             'done': (rng.uniform(size=(b, 1)) < 0.2).astype(F32)}
    batch.update({key: rng.normal(size=(b, act_dim)).astype(F32) for key in ('pi_noise', 'pi_next_noise', 'target_noise')})
    if args.alg == 'rrd':
        batch.update({'rrd_obs': obs(episodes, k), 'rrd_obs_next': obs(episodes, k), 'rrd_acts': acts(episodes, k),
                      'rrd_rews': rng.normal(size=(episodes, 1)).astype(F32),
                      'rrd_var_coef': np.array([[1 - k / 10], [0.5]], F32)})
    return batch


# ---- divergence reports ----------------------------------------------------------------------------
def first_divergence(diffs, atol):
    """A message naming the first tensor (creation order) beyond `atol`, or None."""
    bad = [row for row in diffs if row[1] > atol]
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
        noise = np.random.RandomState(7).normal(size=args.acts_dims).astype(F32)
        modes = [dict(explore=False, noise=noise), dict(explore=True, noise=noise)]
    for mode in modes:
        (tf_action, tf_info), (torch_action, torch_info) = (agent.step(obs, test_info=True, **mode)
                                                            for agent in (tf_agent, torch_agent))
        if args.discrete:
            assert tf_action == torch_action, f'{when}: greedy actions differ: TF {tf_action}, torch {torch_action}'
        message = value_divergence({'action': tf_action, **tf_info}, {'action': torch_action, **torch_info}, LOSS_RTOL)
        assert message is None, f'{when}, step({mode}): {message}'


def train_both(tf_agent, torch_agent, update):
    """One learner update on both agents (TD3: train_q, and train_pi every pi_delay_freq-th update
    on a batch of its own) followed, every second update, by a target update."""
    args = tf_agent.args
    batch = make_batch(args, seed=update)
    infos = []
    for agent in (tf_agent, torch_agent):
        agent.normalizer_update(batch)  # a no-op without --obs_normalization
        if (args.basis_alg if args.alg == 'rrd' else args.alg) == 'td3':
            info = agent.train_q(batch)
            if update % args.pi_delay_freq == 0:
                info.update(agent.train_pi(make_batch(args, seed=100 + update)))
        else:
            info = agent.train(batch)
        if update % 2 == 0:
            agent.target_update()
        infos.append({key: float(value) for key, value in info.items()})
    return infos


# ---- tests -----------------------------------------------------------------------------------------
@pytest.mark.parametrize('name', list(CASES))
def test_parity(name):
    tf_agent, torch_agent = make_pair(name)
    diffs = state_diff(tf_agent, torch_agent)
    assert all(abs_diff == 0.0 for _, abs_diff, _ in diffs), first_divergence(diffs, 0.0)
    obs = make_batch(tf_agent.args, seed=99)['obs'][0]
    check_steps(tf_agent, torch_agent, obs, 'before training')
    for update in range(1, UPDATES + 1):
        tf_info, torch_info = train_both(tf_agent, torch_agent, update)
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
        train_both(tf_agent, torch_agent, update)
    other_tf, other_torch = make_pair(name)
    torch_to_tf(torch_agent, other_tf)
    tf_to_torch(other_tf, other_torch)
    for key, obj in torch_agent.checkpoint_state().items():
        expected, got = obj.state_dict(), getattr(other_torch, key).state_dict()
        if 'param_groups' in expected:
            assert expected['param_groups'] == got['param_groups'], key
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
    tf_agent, _ = make_pair('sac')
    _, torch_agent = make_pair('rrd-sac')
    with pytest.raises(TransferError, match='reward_net'):
        tf_to_torch(tf_agent, torch_agent)
    with pytest.raises(TransferError, match='reward_net'):
        torch_to_tf(torch_agent, tf_agent)
