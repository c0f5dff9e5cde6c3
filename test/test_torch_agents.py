"""PyTorch agents against docs/algorithms.md sections 4-7 and 11 (project issue #2).

Losses are recomputed in numpy (float64) from the formulas of docs/algorithms.md with the weights read out of
the torch modules; updates are checked against a hand-rolled Adam, and the simultaneous-step
semantics against a manual autograd computation on copies of the agent.
"""
import argparse
import copy
import importlib.util
import os
import re
import warnings

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import algorithm
from algorithm import BackendError, create_agent, select_backend
from algorithm.checkpoint import STATE_FILE, CheckpointError
from arguments import get_args
from utils.torch_utils import ConvTorso, Normalizer, SameConv2d

F32 = np.float32
# Small nets: one thread is fastest, and on a busy machine extra OpenMP threads only spin.


@pytest.fixture(autouse=True)
def no_env_backend(monkeypatch):
    monkeypatch.delenv('USE_PYTORCH', raising=False)


# ---- construction ---------------------------------------------------------------------------------
def make_args(env, alg, obs_dims, acts_dims, *flags, **overrides):
    args = get_args(['--env', env, '--alg', alg, '--use_pytorch', 'True', '--cuda', 'False', *flags])
    args.obs_dims, args.acts_dims = list(obs_dims), list(acts_dims)
    for key, value in overrides.items():
        setattr(args, key, value)
    return args


def make_agent(env, alg, obs_dims=(5,), acts_dims=(2,), *flags, seed=0, **overrides):
    torch.manual_seed(seed)
    return create_agent(make_args(env, alg, obs_dims, acts_dims, *flags, **overrides))


def mujoco_agent(alg, *flags, **kw):
    return make_agent('Swimmer-v2', alg, (5,), (2,), *flags, **kw)


def cartpole_agent(alg, *flags, **kw):
    return make_agent('CartPole-v1', alg, (4,), (3,), *flags, **kw)


def continuous_batch(rng, b=16, obs_dim=5, act_dim=2, noise_scale=0.3):
    done = (rng.uniform(size=(b, 1)) < 0.3).astype(F32)
    done[0], done[1] = 1.0, 0.0
    return {
        'obs': (rng.normal(size=(b, obs_dim)) * 2 + 1).astype(F32),
        'obs_next': (rng.normal(size=(b, obs_dim)) * 2 + 1).astype(F32),
        'acts': rng.uniform(-1, 1, size=(b, act_dim)).astype(F32),
        'rews': (rng.normal(size=(b, 1)) * 2).astype(F32),
        'done': done,
        # bounded noise keeps tanh away from saturation, where float32 and float64 disagree
        'pi_noise': rng.uniform(-noise_scale, noise_scale, size=(b, act_dim)).astype(F32),
        'pi_next_noise': rng.uniform(-noise_scale, noise_scale, size=(b, act_dim)).astype(F32),
        'target_noise': (rng.normal(size=(b, act_dim)) * 2).astype(F32),
    }


def discrete_batch(rng, b=16, obs_dim=4, n_actions=3):
    batch = continuous_batch(rng, b, obs_dim, 1)
    batch['acts'] = rng.randint(0, n_actions, size=b).astype(np.int64)
    batch['rews'] = (rng.normal(size=(b, 1)) * 3).astype(F32)  # both Huber branches
    return batch


def add_rrd(batch, rng, episodes=3, k=4, discrete=False, n_actions=3):
    obs_dim = batch['obs'].shape[1]
    batch['rrd_obs'] = rng.normal(size=(episodes, k, obs_dim)).astype(F32)
    batch['rrd_obs_next'] = rng.normal(size=(episodes, k, obs_dim)).astype(F32)
    if discrete:
        batch['rrd_acts'] = rng.randint(0, n_actions, size=(episodes, k)).astype(np.int64)
    else:
        batch['rrd_acts'] = rng.uniform(-1, 1, size=(episodes, k, batch['acts'].shape[1])).astype(F32)
    batch['rrd_rews'] = rng.normal(size=(episodes, 1)).astype(F32)
    batch['rrd_var_coef'] = np.array([[0.5], [1.0], [0.0]], F32)[:episodes]
    return batch


def perturb(module, scale=0.05, seed=123):
    """Make a target copy differ from its online twin, so the tests see which one is used."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(scale * torch.randn(p.shape, generator=gen))


# ---- numpy twins ----------------------------------------------------------------------------------
def layers(module):
    return [(m.weight.detach().double().numpy().copy(), m.bias.detach().double().numpy().copy())
            for m in module.modules() if isinstance(m, nn.Linear)]


def np_mlp(params, x):
    """ReLU hidden layers, linear output; returns the output and every layer's input."""
    inputs = []
    for i, (w, b) in enumerate(params):
        inputs.append(x)
        x = x @ w.T + b
        if i < len(params) - 1:
            x = np.maximum(x, 0.0)
    return x, inputs


def np_mlp_grads(params, inputs, d_out):
    """Backprop of np_mlp: [(dW, db)] per layer for the output gradient `d_out`."""
    grads = [None] * len(params)
    d = d_out
    for i in reversed(range(len(params))):
        grads[i] = (d.T @ inputs[i], d.sum(axis=0))
        if i:
            d = (d @ params[i][0]) * (inputs[i] > 0)
    return grads


def f64(x):
    return np.asarray(x, np.float64)


class NpAdam:
    """Adam as TF1's AdamOptimizer computes it (both backends follow it): the bias corrections
    fold into the step size and epsilon is added to the uncorrected sqrt(v)."""

    def __init__(self, lr, eps=1e-8, b1=0.9, b2=0.999):
        self.lr, self.eps, self.b1, self.b2, self.t, self.m, self.v = lr, eps, b1, b2, 0, None, None

    def step(self, params, grads):
        if self.m is None:
            self.m, self.v = [np.zeros_like(g) for g in grads], [np.zeros_like(g) for g in grads]
        self.t += 1
        out = []
        for i, (p, g) in enumerate(zip(params, grads)):
            self.m[i] = self.b1 * self.m[i] + (1 - self.b1) * g
            self.v[i] = self.b2 * self.v[i] + (1 - self.b2) * g * g
            lr_t = self.lr * np.sqrt(1 - self.b2 ** self.t) / (1 - self.b1 ** self.t)
            out.append(p - lr_t * self.m[i] / (np.sqrt(self.v[i]) + self.eps))
        return out


def flat(params):
    return [a for wb in params for a in wb]


def np_normalize(x, seen):
    seen = f64(seen)
    mean = seen.mean(axis=0)
    std = np.maximum(1e-2, np.sqrt(np.maximum((seen ** 2).mean(axis=0) - mean ** 2, 0.0)))
    return np.clip((f64(x) - mean) / std, -5.0, 5.0)


def np_ddpg_q(q_params, obs, acts):
    h = np.maximum(obs @ q_params[0][0].T + q_params[0][1], 0.0)
    return np_mlp(q_params[1:], np.concatenate([h, acts], axis=-1))[0]


def np_q(params, obs, acts):
    return np_mlp(params, np.concatenate([obs, acts], axis=-1))[0]


def np_sac_policy(pi_params, obs, noise):
    out = np_mlp(pi_params, obs)[0]
    act_dim = out.shape[1] // 2
    mean, raw_log_std = out[:, :act_dim], out[:, act_dim:]
    log_std = np.clip(raw_log_std, -20.0, 2.0)
    std = np.maximum(np.exp(log_std), 1e-2)
    u = mean + std * f64(noise)
    a = np.tanh(u)
    log_p = np.sum(-0.5 * np.log(2 * np.pi) - log_std - 0.5 * ((u - mean) / std) ** 2, axis=-1, keepdims=True) \
        - np.sum(np.log(1 - a ** 2 + 1e-6), axis=-1, keepdims=True)
    return dict(mean=mean, raw_log_std=raw_log_std, std=std, a=a, log_p=log_p)


def np_sac_q_loss(agent, batch, rews, obs, obs_next):
    q1, q2 = layers(agent.q1), layers(agent.q2)
    q1t, q2t = layers(agent.q1_target), layers(agent.q2_target)
    alpha = float(agent.temperature.log_alpha.detach().exp())
    nxt = np_sac_policy(layers(agent.pi), obs_next, batch['pi_next_noise'])
    v_next = np.minimum(np_q(q1t, obs_next, nxt['a']), np_q(q2t, obs_next, nxt['a'])) - alpha * nxt['log_p']
    y = f64(rews) + (1 - f64(batch['done'])) * agent.args.gamma * v_next
    acts = f64(batch['acts'])
    return np.mean((np_q(q1, obs, acts) - y) ** 2) + np.mean((np_q(q2, obs, acts) - y) ** 2)


def np_dqn_q(agent_q, obs):
    torso = layers(agent_q.torso)
    h = np.maximum(obs @ torso[0][0].T + torso[0][1], 0.0)
    adv = np_mlp(layers(agent_q.advantage), h)[0]
    if agent_q.value is None:
        return adv
    return np_mlp(layers(agent_q.value), h)[0] + adv - adv.mean(axis=-1, keepdims=True)


def huber(x):
    return np.where(np.abs(x) <= 1.0, 0.5 * x ** 2, np.abs(x) - 0.5)


def np_dqn_loss(agent, batch, rews):
    obs, obs_next = f64(batch['obs']), f64(batch['obs_next'])
    q_next_t = np_dqn_q(agent.q_target, obs_next)
    if agent.args.double:
        v_next = q_next_t[np.arange(len(obs)), np_dqn_q(agent.q, obs_next).argmax(axis=1)][:, None]
    else:
        v_next = q_next_t.max(axis=1, keepdims=True)
    y = f64(rews) + (1 - f64(batch['done'])) * agent.args.gamma * v_next
    q = np_dqn_q(agent.q, obs)[np.arange(len(obs)), batch['acts']][:, None]
    return np.mean(huber(q - y))


def np_reward_inputs(batch, prefix, norm, discrete):
    obs, obs_next = norm(batch[prefix + 'obs']), norm(batch[prefix + 'obs_next'])
    acts = batch[prefix + 'acts']
    parts = [obs] if discrete else [obs, f64(acts)]
    return np.concatenate(parts + [obs - obs_next], axis=-1), acts


def np_rewards(params, x, acts, discrete):
    out, inputs = np_mlp(params, x)
    if discrete:
        return out[np.arange(len(x)), acts][:, None], inputs
    return out, inputs


def np_rrd(agent, batch, norm=f64):
    """(proxy rewards for the basis batch, R_loss, R_var, grads of the total loss on the net)."""
    discrete = agent.args.discrete
    params = layers(agent.reward_net)
    x, acts = np_reward_inputs(batch, '', norm, discrete)
    rews = np_rewards(params, x, acts, discrete)[0]
    e, k = batch['rrd_obs'].shape[:2]
    flat_batch = {key: batch[key].reshape(e * k, *batch[key].shape[2:])
                  for key in ('rrd_obs', 'rrd_obs_next', 'rrd_acts')}
    x, acts = np_reward_inputs(flat_batch, 'rrd_', norm, discrete)
    r, inputs = np_rewards(params, x, acts, discrete)
    r = r.reshape(e, k)
    mean = r.mean(axis=1, keepdims=True)
    target = f64(batch['rrd_rews'])
    loss = np.mean((mean - target) ** 2)
    var = ((r - mean) ** 2).sum(axis=1, keepdims=True) / (k - 1)
    d_r = np.repeat(2 * (mean - target) / (e * k), k, axis=1)
    if agent.args.rrd_bias_correction:
        coef = f64(batch['rrd_var_coef'])
        d_r = d_r - coef / (e * k) * 2 * (r - mean) / (k - 1)
    d_r = d_r.reshape(e * k, 1)
    if discrete:
        d_out = np.zeros((e * k, params[-1][0].shape[0]))
        d_out[np.arange(e * k), acts] = d_r[:, 0]
        d_r = d_out
    return rews, loss, var.mean(), np_mlp_grads(params, inputs, d_r)


def info_floats(info):
    return {key: float(value) for key, value in info.items()}


# ---- DDPG ------------------------------------------------------------------------------------------
def test_ddpg_losses_and_step():
    agent = mujoco_agent('ddpg')
    assert agent.args.obs_normalization  # the DDPG default
    rng = np.random.RandomState(0)
    seen = continuous_batch(rng)
    agent.normalizer_update(seen)
    seen_obs = np.concatenate([seen['obs'], seen['obs_next']])
    norm = lambda x: np_normalize(x, seen_obs)  # noqa: E731
    perturb(agent.pi_target, seed=1)
    perturb(agent.q_target, seed=2)
    perturb(agent.q, scale=0.1, seed=3)  # non-zero biases, so the L2 penalty sees them
    batch = continuous_batch(rng)
    pi, q = layers(agent.pi), layers(agent.q)
    pi_t, q_t = layers(agent.pi_target), layers(agent.q_target)

    obs, obs_next = norm(batch['obs']), norm(batch['obs_next'])
    pi_loss = -np.mean(np_ddpg_q(q, obs, np.tanh(np_mlp(pi, obs)[0])))
    y = f64(batch['rews']) + (1 - f64(batch['done'])) * agent.args.gamma * \
        np_ddpg_q(q_t, obs_next, np.tanh(np_mlp(pi_t, obs_next)[0]))
    q_loss = np.mean((np_ddpg_q(q, obs, f64(batch['acts'])) - y) ** 2)
    q_reg = np.mean([agent.args.q_reg * np.sum(t ** 2) / 2 for t in flat(q)])
    assert len(flat(q)) == 6

    info = info_floats(agent.train(batch))
    assert set(info) == set(agent.train_info) == {'Pi_loss', 'Q_loss', 'Q_reg_loss'}
    assert info['Pi_loss'] == pytest.approx(pi_loss, rel=1e-5, abs=1e-6)
    assert info['Q_loss'] == pytest.approx(q_loss, rel=1e-5)
    assert info['Q_reg_loss'] == pytest.approx(q_reg, rel=1e-5)

    # acting: deterministic pi(s), exploration clip(pi + std_act * noise), Q_average = Q(s, pi(s))
    pi, q = layers(agent.pi), layers(agent.q)
    o = batch['obs'][3]
    det = np.tanh(np_mlp(pi, norm(o[None]))[0])[0]
    action, step_info = agent.step(o, test_info=True)
    assert action.dtype == F32 and action.shape == (2,)
    np.testing.assert_allclose(action, det, rtol=1e-5, atol=1e-6)
    assert set(step_info) == {'Q_average'}
    np.testing.assert_allclose(step_info['Q_average'], np_ddpg_q(q, norm(o[None]), det[None])[0], rtol=1e-5,
                               atol=1e-6)
    noise = np.array([0.3, -30.0], F32)
    np.testing.assert_allclose(agent.step(o, explore=True, noise=noise),
                               np.clip(det + agent.args.std_act * noise, -1, 1), rtol=1e-5, atol=1e-6)
    assert agent.step(o, explore=True, noise=noise)[1] == -1.0


# ---- TD3 -------------------------------------------------------------------------------------------
def test_td3_target_smoothing_and_split_updates():
    agent = mujoco_agent('td3', pi_t_std=0.3, pi_t_clip=0.4)
    with torch.no_grad():  # push pi_t(s') to +-1, so the clip of the smoothed action matters
        agent.pi_target.net[-1].bias.copy_(torch.tensor([3.0, -3.0]))
    for module, seed in ((agent.pi_target, 1), (agent.q1_target, 2), (agent.q2_target, 3)):
        perturb(module, seed=seed)
    batch = continuous_batch(np.random.RandomState(1))
    obs, obs_next, acts = f64(batch['obs']), f64(batch['obs_next']), f64(batch['acts'])
    eps = np.clip(f64(batch['target_noise']) * 0.3, -0.4, 0.4)
    assert (np.abs(f64(batch['target_noise']) * 0.3) > 0.4).any()  # the clip is exercised
    a_next = np.clip(np.tanh(np_mlp(layers(agent.pi_target), obs_next)[0]) + eps, -1, 1)
    q_next = np.minimum(np_q(layers(agent.q1_target), obs_next, a_next),
                        np_q(layers(agent.q2_target), obs_next, a_next))
    y = f64(batch['rews']) + (1 - f64(batch['done'])) * agent.args.gamma * q_next
    q_loss = np.mean((np_q(layers(agent.q1), obs, acts) - y) ** 2) \
        + np.mean((np_q(layers(agent.q2), obs, acts) - y) ** 2)

    pi_before = copy.deepcopy(agent.pi.state_dict())
    q_info = info_floats(agent.train_q(batch))
    assert set(q_info) == {'Q_loss'}
    assert q_info['Q_loss'] == pytest.approx(q_loss, rel=1e-5)
    assert all(torch.equal(v, pi_before[k]) for k, v in agent.pi.state_dict().items())

    # the policy step uses the critic as train_q left it, and touches only the policy
    pi_loss = -np.mean(np_q(layers(agent.q1), obs, np.tanh(np_mlp(layers(agent.pi), obs)[0])))
    q_before = copy.deepcopy(agent.q1.state_dict())
    pi_info = info_floats(agent.train_pi(batch))
    assert set(pi_info) == {'Pi_loss'}
    assert pi_info['Pi_loss'] == pytest.approx(pi_loss, rel=1e-5)
    assert all(torch.equal(v, q_before[k]) for k, v in agent.q1.state_dict().items())
    assert any(not torch.equal(v, pi_before[k]) for k, v in agent.pi.state_dict().items())
    assert set(agent.train_info) == {'Pi_loss', 'Q_loss'}

    o = batch['obs'][0]
    action, step_info = agent.step(o, test_info=True)
    np.testing.assert_allclose(step_info['Q_average'],
                               np_q(layers(agent.q1), f64(o[None]), f64(action[None]))[0], rtol=1e-5, atol=1e-6)


# ---- SAC -------------------------------------------------------------------------------------------
def sac_agent(**kw):
    agent = mujoco_agent('sac', alpha_init=0.5, **kw)
    with torch.no_grad():  # log_std of action 0 above the upper clip, of action 1 below the lower clip
        agent.pi.net[-1].bias.copy_(torch.tensor([0.0, 0.0, 3.5, -25.0]))
    return agent


def test_sac_losses_temperature_and_step():
    agent = sac_agent()
    perturb(agent.q1_target, seed=1)
    perturb(agent.q2_target, seed=2)
    batch = continuous_batch(np.random.RandomState(2))
    obs, obs_next = f64(batch['obs']), f64(batch['obs_next'])
    pi, q1, q2 = layers(agent.pi), layers(agent.q1), layers(agent.q2)
    cur = np_sac_policy(pi, obs, batch['pi_noise'])
    assert (cur['raw_log_std'][:, 0] > 2).all() and (cur['raw_log_std'][:, 1] < -20).all()
    alpha = 0.5
    pi_loss = np.mean(alpha * cur['log_p'] - np.minimum(np_q(q1, obs, cur['a']), np_q(q2, obs, cur['a'])))
    q_loss = np_sac_q_loss(agent, batch, batch['rews'], obs, obs_next)
    g_log_alpha = -(cur['log_p'].mean() - 2)  # d/dlog_alpha of -log_alpha (mean log pi - |A|)
    new_log_alpha = NpAdam(agent.args.alpha_lr).step([np.log(alpha)], [g_log_alpha])[0]

    info = info_floats(agent.train(batch))
    assert set(info) == set(agent.train_info) == {'Pi_loss', 'Q_loss', 'Alpha'}
    assert info['Alpha'] == pytest.approx(alpha, rel=1e-6)
    assert info['Pi_loss'] == pytest.approx(pi_loss, rel=1e-5)
    assert info['Q_loss'] == pytest.approx(q_loss, rel=1e-5)
    assert float(agent.temperature.log_alpha.detach()) == pytest.approx(new_log_alpha, abs=1e-7)
    assert float(agent.temperature.log_alpha.detach()) != pytest.approx(np.log(alpha), abs=1e-5)

    # deterministic action tanh(mean); given noise reproduces the exploring action; step info
    pi = layers(agent.pi)
    o, xi = batch['obs'][4], np.array([0.2, -0.1], F32)
    ref = np_sac_policy(pi, f64(o[None]), xi[None])
    np.testing.assert_allclose(agent.step(o), np.tanh(ref['mean'][0]), rtol=1e-5, atol=1e-6)
    action, step_info = agent.step(o, explore=True, test_info=True, noise=xi)
    np.testing.assert_allclose(action, ref['a'][0], rtol=1e-5, atol=1e-6)
    assert set(step_info) == set(agent.step_info) == {'Q_average', 'Pi_step_std'}
    np.testing.assert_allclose(step_info['Pi_step_std'], ref['std'][0], rtol=1e-5)
    assert step_info['Pi_step_std'][1] == pytest.approx(1e-2)  # the floor
    alpha = float(agent.temperature.log_alpha.detach().exp())
    v = np.minimum(np_q(layers(agent.q1), f64(o[None]), ref['a']), np_q(layers(agent.q2), f64(o[None]), ref['a'])) \
        - alpha * ref['log_p']
    np.testing.assert_allclose(step_info['Q_average'], v[0], rtol=1e-4, atol=1e-5)


def test_sac_temperature_update():
    """log_alpha follows Adam on -log_alpha (mean log pi - |A|): with log pi near -1.3, above the
    target entropy -|A| = -2, alpha must shrink (a sign slip on the target entropy would grow it)."""
    agent = mujoco_agent('sac', alpha_init=0.5)
    with torch.no_grad():  # a state-independent Gaussian, so log pi is known
        agent.pi.net[-1].weight.zero_()
        agent.pi.net[-1].bias.copy_(torch.tensor([0.3, -0.2, -0.5, 0.1]))
    batch = continuous_batch(np.random.RandomState(3))
    batch['pi_noise'][:] = 0.0
    adam, log_alpha = NpAdam(agent.args.alpha_lr), np.log(0.5)
    for _ in range(2):
        log_p = np_sac_policy(layers(agent.pi), f64(batch['obs']), batch['pi_noise'])['log_p']
        assert -2.0 < log_p.mean() < -1.0
        log_alpha = adam.step([log_alpha], [-(log_p.mean() - 2)])[0]
        agent.train(batch)
        assert float(agent.temperature.log_alpha.detach()) == pytest.approx(log_alpha, abs=1e-7)
    assert log_alpha < np.log(0.5) - 1.9 * agent.args.alpha_lr


def test_sac_fixed_temperature():
    agent = sac_agent(alpha_lr=0.0)
    agent.train(continuous_batch(np.random.RandomState(3)))
    assert float(agent.temperature.log_alpha.detach()) == pytest.approx(np.log(0.5), abs=1e-7)


def sac_manual_step(agent, batch):
    """One simultaneous SAC step written out with autograd on `agent` (a copy): every gradient
    from the current parameters, then every Adam step. Returns the critic gradients."""
    t = {key: torch.as_tensor(value) for key, value in batch.items()}
    log_alpha = agent.temperature.log_alpha

    def policy(obs, noise):
        mean, log_std = agent.pi.net(obs).chunk(2, dim=-1)
        log_std = log_std.clamp(-20, 2)
        std = log_std.exp().clamp(min=1e-2)
        u = mean + std * noise
        a = torch.tanh(u)
        log_p = (-0.5 * np.log(2 * np.pi) - log_std - 0.5 * ((u - mean) / std) ** 2).sum(-1, keepdim=True) \
            - torch.log(1 - a ** 2 + 1e-6).sum(-1, keepdim=True)
        return a, log_p

    a, log_p = policy(t['obs'], t['pi_noise'])
    pi_loss = (log_alpha.exp().detach() * log_p - torch.min(agent.q1(t['obs'], a), agent.q2(t['obs'], a))).mean()
    alpha_loss = -log_alpha * (log_p.mean().detach() - 2)
    with torch.no_grad():
        a2, log_p2 = policy(t['obs_next'], t['pi_next_noise'])
        v = torch.min(agent.q1_target(t['obs_next'], a2), agent.q2_target(t['obs_next'], a2)) - log_alpha.exp() * log_p2
        y = t['rews'] + (1 - t['done']) * agent.args.gamma * v
    q_loss = ((agent.q1(t['obs'], t['acts']) - y) ** 2).mean() + ((agent.q2(t['obs'], t['acts']) - y) ** 2).mean()
    groups = [(pi_loss, list(agent.pi.parameters()), agent.pi_optimizer),
              (alpha_loss, [log_alpha], agent.alpha_optimizer),
              (q_loss, list(agent.q1.parameters()) + list(agent.q2.parameters()), agent.q_optimizer)]
    grads = [torch.autograd.grad(loss, params, retain_graph=True) for loss, params, _ in groups]
    for (_, params, opt), group_grads in zip(groups, grads):
        for p, g in zip(params, group_grads):
            p.grad = g
        opt.step()
    return grads[2]


def module_tensors(agent, names=('pi', 'q1', 'q2', 'temperature')):
    return [p.detach().clone() for name in names for p in getattr(agent, name).parameters()]


def test_sac_train_is_one_simultaneous_step():
    agent = sac_agent()
    rng = np.random.RandomState(4)
    for _ in range(3):  # Adam moments away from zero: later updates depend on gradient magnitudes
        agent.train(continuous_batch(rng))
        agent.target_update()
    batch = continuous_batch(rng)
    manual, sequential = copy.deepcopy(agent), copy.deepcopy(agent)
    q_grads = sac_manual_step(manual, batch)
    sequential.train_q(batch)  # the order a naive port would use: critics first, then the policy
    sequential.train_pi(batch)

    agent.train(batch)
    got = module_tensors(agent)
    for a, b in zip(got, module_tensors(manual)):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)
    # the test can tell: sequential updates end elsewhere
    assert max((a - b).abs().max().item() for a, b in zip(got, module_tensors(sequential))) > 1e-6
    # the critics' gradients are those of the critic loss alone (no policy-loss contribution)
    critic_params = list(agent.q1.parameters()) + list(agent.q2.parameters())
    for p, g in zip(critic_params, q_grads):
        torch.testing.assert_close(p.grad, g, rtol=1e-5, atol=1e-7)

    for p in critic_params:
        p.grad = None
    before = [p.detach().clone() for p in critic_params]
    agent.train_pi(batch)
    assert all(p.grad is None for p in critic_params)
    assert all(torch.equal(p, b) for p, b in zip(critic_params, before))


# ---- target updates ----------------------------------------------------------------------------------
@pytest.mark.parametrize('alg, pairs', [('ddpg', [('pi_target', 'pi'), ('q_target', 'q')]),
                                        ('sac', [('q1_target', 'q1'), ('q2_target', 'q2')])])
def test_polyak_target_update(alg, pairs):
    agent = mujoco_agent(alg, polyak=0.9)
    for i, (_, online) in enumerate(pairs):
        perturb(getattr(agent, online), scale=0.2, seed=i)
    before = {name: [p.detach().clone() for p in getattr(agent, name).parameters()] for pair in pairs for name in pair}
    agent.target_update()
    for target, online in pairs:
        for t_new, t_old, o in zip(getattr(agent, target).parameters(), before[target], before[online]):
            torch.testing.assert_close(t_new.detach(), 0.9 * t_old + 0.1 * o, rtol=1e-6, atol=1e-7)
            assert not torch.equal(t_new, t_old)
    if alg == 'sac':
        assert not hasattr(agent, 'pi_target')


def test_dqn_hard_target_update_every_call():
    agent = cartpole_agent('dqn')
    rng = np.random.RandomState(5)
    for _ in range(2):
        agent.train(discrete_batch(rng))
        assert any(not torch.equal(a, b) for a, b in zip(agent.q.parameters(), agent.q_target.parameters()))
        agent.target_update()
        assert all(torch.equal(a, b) for a, b in zip(agent.q.parameters(), agent.q_target.parameters()))


# ---- DQN -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize('double, dueling', [(False, False), (True, False), (False, True), (True, True)])
def test_dqn_huber_loss(double, dueling):
    agent = cartpole_agent('dqn', double=double, dueling=dueling)
    assert (agent.q.value is not None) == dueling
    perturb(agent.q_target, scale=0.3)
    batch = discrete_batch(np.random.RandomState(6))
    diff = np_dqn_q(agent.q, f64(batch['obs']))[np.arange(16), batch['acts']][:, None] - f64(batch['rews'])
    assert (np.abs(diff) > 1).any() and (np.abs(diff) < 1).any()
    loss = np_dqn_loss(agent, batch, batch['rews'])
    if double:  # the test tells double from plain Q-learning
        agent.args.double = False
        assert np_dqn_loss(agent, batch, batch['rews']) != pytest.approx(loss, rel=1e-3)
        agent.args.double = True
    info = info_floats(agent.train(batch))
    assert set(info) == {'Q_loss'}
    assert info['Q_loss'] == pytest.approx(loss, rel=1e-5)


def test_dqn_acting_epsilon():
    agent = cartpole_agent('dqn')
    obs = np.random.RandomState(7).normal(size=(20, 4)).astype(F32)
    greedy = np_dqn_q(agent.q, f64(obs)).argmax(axis=1)
    agent.epsilon = 0.0
    assert [agent.step(o, explore=True) for o in obs] == list(greedy)
    action, info = agent.step(obs[0], test_info=True)
    assert isinstance(action, int)
    assert info['Q_average'] == pytest.approx(np_dqn_q(agent.q, f64(obs[:1])).max(), rel=1e-5)
    agent.epsilon = 1.0
    assert [agent.step(o) for o in obs] == list(greedy)  # tests act greedily whatever epsilon
    np.random.seed(0)
    torch.manual_seed(0)
    counts = np.bincount([agent.step(obs[0], explore=True) for _ in range(900)], minlength=3)
    assert len(counts) == 3 and (counts > 240).all() and (counts < 360).all(), counts


# ---- RRD -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize('bias_correction', [False, True])
def test_rrd_sac_reward_loss_and_adam_update(bias_correction):
    """R_ep/T regression (and the variance correction) on normalised inputs; two updates of the
    reward net against numpy Adam; the critic learns from the pre-update proxy reward."""
    agent = mujoco_agent('rrd', '--basis_alg', 'sac', '--obs_normalization', 'True',
                         '--rrd_bias_correction', str(bias_correction))
    assert agent.train_info == ('Pi_loss', 'Q_loss', 'Alpha', 'R_loss') + (('R_var',) if bias_correction else ())
    rng = np.random.RandomState(8)
    seen = continuous_batch(rng)
    agent.normalizer_update(seen)
    norm = lambda x: np_normalize(x, np.concatenate([seen['obs'], seen['obs_next']]))  # noqa: E731
    adam = NpAdam(agent.args.r_lr)
    params = flat(layers(agent.reward_net))
    for _ in range(2):
        batch = add_rrd(continuous_batch(rng), rng)
        batch['rews'][:] = 1e3  # the stored reward must not reach the critic
        rews, r_loss, r_var, grads = np_rrd(agent, batch, norm)
        q_loss = np_sac_q_loss(agent, batch, rews, norm(batch['obs']), norm(batch['obs_next']))
        info = info_floats(agent.train(batch))
        assert set(info) == set(agent.train_info)
        assert info['R_loss'] == pytest.approx(r_loss, rel=1e-5)
        if bias_correction:
            assert info['R_var'] == pytest.approx(r_var, rel=1e-4)
        assert info['Q_loss'] == pytest.approx(q_loss, rel=1e-4)
        params = adam.step(params, flat(grads))
        for got, want in zip(agent.reward_net.parameters(), params):
            np.testing.assert_allclose(got.detach().numpy(), want, rtol=1e-4, atol=2e-6)


def test_rrd_dqn_discrete_reward_net():
    agent = cartpole_agent('rrd', '--rrd_bias_correction', 'True')
    assert agent.args.basis_alg == 'dqn' and agent.reward_net.discrete
    assert layers(agent.reward_net)[0][0].shape == (256, 8)  # concat(obs, obs - obs_next), no action
    rng = np.random.RandomState(9)
    batch = add_rrd(discrete_batch(rng), rng, discrete=True)
    rews, r_loss, r_var, grads = np_rrd(agent, batch)
    q_loss = np_dqn_loss(agent, batch, rews)
    params = NpAdam(agent.args.r_lr).step(flat(layers(agent.reward_net)), flat(grads))
    info = info_floats(agent.train(batch))
    assert set(info) == {'Q_loss', 'R_loss', 'R_var'}
    assert info['R_loss'] == pytest.approx(r_loss, rel=1e-5)
    assert info['R_var'] == pytest.approx(r_var, rel=1e-4)
    assert info['Q_loss'] == pytest.approx(q_loss, rel=1e-5)
    for got, want in zip(agent.reward_net.parameters(), params):
        np.testing.assert_allclose(got.detach().numpy(), want, rtol=1e-4, atol=2e-6)


def test_rrd_td3_reward_update_belongs_to_train_q():
    agent = mujoco_agent('rrd', '--basis_alg', 'td3')
    rng = np.random.RandomState(10)
    batch = add_rrd(continuous_batch(rng), rng)
    before = [p.detach().clone() for p in agent.reward_net.parameters()]
    assert set(agent.train_pi(batch)) == {'Pi_loss'}
    assert all(torch.equal(p, b) for p, b in zip(agent.reward_net.parameters(), before))
    assert set(agent.train_q(batch)) == {'Q_loss', 'R_loss'}
    assert all(not torch.equal(p, b) for p, b in zip(agent.reward_net.parameters(), before))


# ---- normaliser ------------------------------------------------------------------------------------------
def test_normalizer_matches_numpy():
    rng = np.random.RandomState(11)
    norm = Normalizer([3])
    first = rng.normal(loc=[1.0, -2.0, 4.0], scale=[0.5, 3.0, 1.0], size=(50, 3))
    first[:, 2] = 4.0  # a constant feature: std floored at 1e-2
    second = rng.normal(loc=[1.0, -2.0, 4.0], scale=[0.5, 3.0, 1.0], size=(30, 3))
    second[:, 2] = 4.0
    norm.update(first)
    norm.update(second)
    seen = np.concatenate([first, second])
    assert float(norm.cnt) == 80
    np.testing.assert_allclose(norm.mean.numpy(), seen.mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(norm.std.numpy(), [seen[:, 0].std(), seen[:, 1].std(), 1e-2], rtol=1e-4)
    x = np.array([[1.2, -2.0, 4.0], [100.0, -100.0, 4.001], [1.0, 5.0, 3.0]], F32)
    got = norm.normalize(torch.as_tensor(x)).numpy()
    np.testing.assert_allclose(got, np_normalize(x, seen), rtol=1e-4, atol=1e-4)
    assert got[1, 0] == 5.0 and got[1, 1] == -5.0 and got[2, 2] == -5.0  # the clip


# ---- checkpoints --------------------------------------------------------------------------------------
CONFIGS = {
    'ddpg': ('Swimmer-v2', 'ddpg', ()),
    'td3': ('Swimmer-v2', 'td3', ()),
    'sac-norm': ('Swimmer-v2', 'sac', ('--obs_normalization', 'True')),
    'dqn-dueling': ('CartPole-v1', 'dqn', ('--dueling', 'True')),
    'rrd-sac': ('Swimmer-v2', 'rrd', ('--rrd_bias_correction', 'True', '--obs_normalization', 'True')),
    'rrd-dqn': ('CartPole-v1', 'rrd', ()),
}


def config_agent(name, seed=0):
    env, alg, flags = CONFIGS[name]
    dims = ((4,), (3,)) if env == 'CartPole-v1' else ((5,), (2,))
    return make_agent(env, alg, *dims, *flags, seed=seed)


def config_batch(agent, rng):
    discrete = agent.args.discrete
    batch = discrete_batch(rng) if discrete else continuous_batch(rng)
    return add_rrd(batch, rng, discrete=discrete) if agent.args.alg == 'rrd' else batch


def update(agent, batch):
    agent.normalizer_update(batch)
    if agent.args.alg == 'td3':
        agent.train_q(batch)
        agent.train_pi(batch)
    else:
        agent.train(batch)
    agent.target_update()


def full_state(agent):
    """Every tensor of the checkpointed modules and optimisers, flattened to one list."""
    out = []

    def walk(value):
        if isinstance(value, torch.Tensor):
            out.append(value.detach().clone())
        elif isinstance(value, dict):
            for key in sorted(value, key=str):
                walk(value[key])
        elif isinstance(value, (list, tuple)):
            for item in value:
                walk(item)
    for name, obj in sorted(agent.checkpoint_state().items()):
        walk(obj.state_dict())
    return out


@pytest.mark.parametrize('config', ['dqn-dueling', 'rrd-dqn'])
def test_dqn_train_pi_changes_nothing(config):
    """DQN has no policy: train_pi returns no info and leaves every tensor as it was, as TF's
    train_pi (an empty op) does; train_q and train are the critic's (and reward net's) update."""
    rng = np.random.RandomState(3)
    agent = config_agent(config)
    batch = config_batch(agent, rng)
    update(agent, batch)
    before = full_state(agent)
    assert agent.train_pi(batch) == {}
    assert all(torch.equal(a, b) for a, b in zip(full_state(agent), before))
    assert set(agent.train_q(batch)) == set(agent.train_info)
    assert any(not torch.equal(a, b) for a, b in zip(full_state(agent), before))


@pytest.mark.parametrize('config', list(CONFIGS))
def test_save_load_round_trip(tmp_path, config):
    rng = np.random.RandomState(12)
    agent = config_agent(config)
    for _ in range(2):
        update(agent, config_batch(agent, rng))
    path = str(tmp_path / 'ckpt.pt')
    agent.save_model(path)
    assert os.listdir(tmp_path) == ['ckpt.pt']  # atomic write leaves no temporary behind

    other = config_agent(config, seed=1)
    state = full_state(agent)
    assert not all(torch.equal(a, b) for a, b in zip(state, full_state(other)))
    other.load_model(path)
    obs = [config_batch(agent, rng)['obs'][i] for i in range(5)]
    for o in obs:
        np.testing.assert_array_equal(agent.step(o), other.step(o))
    other_state = full_state(other)
    assert len(state) == len(other_state) and all(torch.equal(a, b) for a, b in zip(state, other_state))
    if agent.args.obs_normalization:
        assert float(other.normalizer.cnt) == 2 * 2 * 16

    batch = config_batch(agent, rng)
    update(agent, batch)
    update(other, batch)
    new_state = full_state(agent)
    assert any(not torch.equal(a, b) for a, b in zip(new_state, state))
    assert all(torch.equal(a, b) for a, b in zip(new_state, full_state(other)))


def test_save_is_atomic(tmp_path, monkeypatch):
    agent = config_agent('sac-norm')
    path = tmp_path / 'ckpt.pt'
    agent.save_model(str(path))
    agent.save_model(str(path))  # overwriting is fine
    good = path.read_bytes()

    def broken_save(obj, f):
        with open(f, 'wb') as out:
            out.write(b'half a checkpoint')
        raise OSError('disk full')
    monkeypatch.setattr(torch, 'save', broken_save)
    update(agent, config_batch(agent, np.random.RandomState(13)))
    with pytest.raises(OSError, match='disk full'):
        agent.save_model(str(path))
    assert path.read_bytes() == good
    assert os.listdir(tmp_path) == ['ckpt.pt']


def test_checkpoint_errors(tmp_path):
    sac = config_agent('sac-norm')
    with pytest.raises(CheckpointError, match='no checkpoint file at .*missing.pt'):
        sac.load_model(str(tmp_path / 'missing.pt'))
    run_checkpoint = tmp_path / 'step450-update776'  # what train.py's run checkpoints look like
    run_checkpoint.mkdir()
    sac.save_model(str(run_checkpoint / 'agent.pt'))
    with pytest.raises(CheckpointError, match=f'is a run checkpoint folder; load the agent in it: {run_checkpoint}/agent.pt'):
        sac.load_model(str(run_checkpoint))
    (run_checkpoint / STATE_FILE).write_bytes(b'')  # complete: the run folder above names it
    with pytest.raises(CheckpointError, match=f'is a run folder; load an agent checkpoint in it, such as its newest: '
                                              f'{run_checkpoint}/agent.pt'):
        sac.load_model(str(tmp_path))
    tf_checkpoint = tmp_path / 'tf-run' / 'step450-update776'
    (tf_checkpoint / 'agent').mkdir(parents=True)
    (tf_checkpoint / STATE_FILE).write_bytes(b'')
    with pytest.raises(CheckpointError, match='is a run folder of the other backend; load an agent checkpoint in it '
                                              f'with --use_pytorch False, such as its newest: {tf_checkpoint}/agent$'):
        sac.load_model(str(tmp_path / 'tf-run'))

    corrupt = tmp_path / 'corrupt.pt'
    corrupt.write_bytes(np.random.RandomState(0).bytes(1000))
    with pytest.raises(CheckpointError, match='corrupt.pt is not a readable torch checkpoint'):
        sac.load_model(str(corrupt))

    foreign = tmp_path / 'foreign.pt'
    torch.save({'weights': torch.zeros(3)}, foreign)
    with pytest.raises(CheckpointError, match="not written by this repo's save_model"):
        sac.load_model(str(foreign))

    ddpg_path = str(tmp_path / 'ddpg.pt')
    make_agent('Swimmer-v2', 'ddpg', (5,), (2,), '--obs_normalization', 'True').save_model(ddpg_path)
    with pytest.raises(CheckpointError, match="alg: checkpoint has 'ddpg', this run has 'sac'") as err:
        sac.load_model(ddpg_path)
    assert 'obs_dims' not in str(err.value) and '\n' not in str(err.value)

    wide_path = str(tmp_path / 'wide.pt')
    make_agent('Swimmer-v2', 'sac', (7,), (2,), '--obs_normalization', 'True').save_model(wide_path)
    with pytest.raises(CheckpointError, match=r'obs_dims: checkpoint has \[7\], this run has \[5\]') as err:
        sac.load_model(wide_path)
    assert 'alg:' not in str(err.value)

    adam_path = str(tmp_path / 'adam.pt')  # DQN's optimisers keep different state
    cartpole_agent('dqn').save_model(adam_path)
    rmsprop = cartpole_agent('dqn', '--optimizer', 'rmsprop')
    with pytest.raises(CheckpointError, match="optimizer: checkpoint has 'adam', this run has 'rmsprop'"):
        rmsprop.load_model(adam_path)
    payload = torch.load(adam_path, weights_only=True)  # written before the field existed: not checked on it
    del payload['meta']['optimizer']
    torch.save(payload, adam_path)
    cartpole_agent('dqn').load_model(adam_path)



def test_cuda_runs_in_full_float32(monkeypatch):
    """On a GPU the port computes in float32 as the TF reference does: cuDNN's TF32 default off
    (matmuls are float32 by torch's default)."""
    from algorithm.basis_alg.base_torch import resolve_device
    monkeypatch.setattr(torch.backends.cudnn, 'allow_tf32', True)  # torch's default; restored after the test
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    with warnings.catch_warnings(record=True) as printed:  # the filters are restored after the block
        warnings.simplefilter('always')
        assert resolve_device(argparse.Namespace(cuda=None)) == torch.device('cuda')
        warnings.warn('TensorFloat32 tensor cores for float32 matrix multiplication available but not enabled. '
                      "Consider setting `torch.set_float32_matmul_precision('high')`", UserWarning)  # inductor's
    assert printed == []  # fp32 is deliberate: a --compile run does not print inductor's TF32 hint
    assert torch.backends.cudnn.allow_tf32 is False and torch.backends.cuda.matmul.allow_tf32 is False
    torch.backends.cudnn.allow_tf32 = True
    assert resolve_device(argparse.Namespace(cuda=False)) == torch.device('cpu')
    assert torch.backends.cudnn.allow_tf32 is True  # a CPU run leaves CUDA's settings alone

# ---- backend selection ----------------------------------------------------------------------------------
def hide(monkeypatch, *modules):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, 'find_spec',
                        lambda name, *a, **kw: None if name in modules else real(name, *a, **kw))


def test_backend_selection(monkeypatch):
    args = make_args('Swimmer-v2', 'rrd', (5,), (2,))
    args.use_pytorch = None
    monkeypatch.setenv('USE_PYTORCH', '1')
    agent = create_agent(args)
    assert args.backend == 'torch' and type(agent).__module__ == 'algorithm.rrd_torch'
    assert type(agent).__mro__[2].__module__ == 'algorithm.basis_alg.sac_torch'

    monkeypatch.setenv('USE_PYTORCH', '0')
    args.use_pytorch = True  # the argument wins over the environment
    assert select_backend(args) == 'torch'
    args.use_pytorch = None
    hide(monkeypatch, 'tensorflow')
    with pytest.raises(BackendError, match='TensorFlow backend was requested but is not installed.*requirements-tf'):
        select_backend(args)
    monkeypatch.delenv('USE_PYTORCH')
    assert select_backend(args) == 'torch'  # nothing requested: what is installed


@pytest.mark.parametrize('value, source', [('torch', 'USE_PYTORCH'), ('2', 'USE_PYTORCH'),
                                           ('on', 'args.use_pytorch'), ('maybe', 'args.use_pytorch')])
def test_backend_request_must_be_a_boolean(monkeypatch, value, source):
    """A library user's USE_PYTORCH typo, or a script's string flag, stops with one line instead of
    silently running TensorFlow; the strings a script may set ('False', 'yes', ...) are read as booleans."""
    monkeypatch.setattr(algorithm, '_installed', lambda backend: True)
    args = make_args('Swimmer-v2', 'sac', (5,), (2,))
    args.use_pytorch = value if source == 'args.use_pytorch' else None
    monkeypatch.setenv('USE_PYTORCH', value)
    with pytest.raises(ValueError, match=f"^{re.escape(source)}='{value}' is not a boolean; set it to true/false"):
        select_backend(args)
    for text, backend in (('False', 'tf'), ('yes', 'torch'), (' 1 ', 'torch'), (0, 'tf')):
        args.use_pytorch = text
        assert select_backend(args) == backend


def test_missing_torch_gives_install_hint(monkeypatch):
    args = make_args('Swimmer-v2', 'sac', (5,), (2,))
    hide(monkeypatch, 'torch')
    with pytest.raises(BackendError, match='PyTorch backend was requested but is not installed: pip install -r requirements.txt'):
        algorithm.create_agent(args)


def test_torch_path_imports_no_tensorflow(fresh_run_modules):
    modules = fresh_run_modules(use_pytorch=True)
    assert 'algorithm.rrd_torch' in modules and 'torch' in modules and 'tensorflow' not in modules


# ---- images -------------------------------------------------------------------------------------------------
def test_same_conv_padding_matches_tf():
    torch.manual_seed(0)
    x = torch.randn(2, 4, 84, 84)
    torso = ConvTorso(4)
    shapes = []
    h = x
    for layer in torso.convs:
        h = layer(h)
        if isinstance(layer, SameConv2d):
            shapes.append(tuple(h.shape[1:]))
    assert shapes == [(32, 21, 21), (64, 11, 11), (64, 11, 11)]
    assert torso.out_dim == 11 * 11 * 64
    features = torso(x.permute(0, 2, 3, 1))
    assert features.shape == (2, 11 * 11 * 64)
    torch.testing.assert_close(features, h.permute(0, 2, 3, 1).flatten(1))  # channels-last flatten

    # TF 'SAME': total padding max((ceil(n/s) - 1) s + k - n, 0), the odd pixel bottom/right
    conv = SameConv2d(3, 5, 4, 2)
    y = torch.randn(1, 3, 21, 21)
    torch.testing.assert_close(conv(y), F.conv2d(F.pad(y, (1, 2, 1, 2)), conv.weight, conv.bias, stride=2))
    conv = SameConv2d(3, 5, 8, 4)
    y = torch.randn(1, 3, 84, 84)
    torch.testing.assert_close(conv(y), F.conv2d(F.pad(y, (2, 2, 2, 2)), conv.weight, conv.bias, stride=4))
    conv = SameConv2d(3, 5, 3, 1)
    y = torch.randn(1, 3, 11, 11)
    torch.testing.assert_close(conv(y), F.conv2d(y, conv.weight, conv.bias, stride=1, padding=1))


@pytest.mark.parametrize('kernel, stride, size', [
    (8, 4, 84), (4, 2, 21), (3, 1, 11),  # the Atari torso's layers (the second pads unevenly)
    (4, 1, 11),  # odd padding at stride 1: one surplus output is cut off
    (3, 2, 8), (5, 3, 20),
    (1, 2, 6),  # TF's last window stops short of the end: mirrored around forward
])
def test_mirrored_same_conv_is_the_mirrored_tf_conv(kernel, stride, size):
    """ConvTorso runs its layers on mirrored frames; each must give TF's 'SAME' conv, mirrored."""
    torch.manual_seed(0)
    conv = SameConv2d(3, 5, kernel, stride)
    x = torch.randn(2, 3, size, size + 1)
    torch.testing.assert_close(conv.forward_mirrored(x.flip(2, 3)).flip(2, 3), conv(x))


def image_batch(rng, b=4, n_actions=6):
    return {'obs': rng.randint(0, 256, size=(b, 84, 84, 4)).astype(np.uint8),
            'obs_next': rng.randint(0, 256, size=(b, 84, 84, 4)).astype(np.uint8),
            'acts': rng.randint(0, n_actions, size=b).astype(np.int64),
            'rews': rng.normal(size=(b, 1)).astype(F32),
            'done': np.array([[0.0], [1.0], [0.0], [0.0]], F32)[:b]}


def test_image_dqn_train_step():
    agent = make_agent('Pong', 'dqn', (84, 84, 4), (6,), '--dueling', 'True')
    batch = image_batch(np.random.RandomState(14))
    before = [p.detach().clone() for p in agent.q.parameters()]
    info = info_floats(agent.train(batch))
    assert np.isfinite(info['Q_loss']) and info['Q_loss'] > 0
    assert all(not torch.equal(p, b) for p, b in zip(agent.q.parameters(), before) if p.dim() > 1)
    action, step_info = agent.step(batch['obs'][0], test_info=True)
    with torch.no_grad():
        q = agent.q(torch.as_tensor(batch['obs'][:1]).float() / 255.0)
    assert action == int(q.argmax()) and step_info['Q_average'] == pytest.approx(float(q.max()), rel=1e-5)


def test_image_rrd_dqn_train_step():
    agent = make_agent('Pong', 'rrd', (84, 84, 4), (6,))
    assert agent.reward_net.torso.convs[0].in_channels == 8
    rng = np.random.RandomState(15)
    batch = image_batch(rng)
    e, k = 2, 3
    batch['rrd_obs'] = rng.randint(0, 256, size=(e, k, 84, 84, 4)).astype(np.uint8)
    batch['rrd_obs_next'] = rng.randint(0, 256, size=(e, k, 84, 84, 4)).astype(np.uint8)
    batch['rrd_acts'] = rng.randint(0, 6, size=(e, k)).astype(np.int64)
    batch['rrd_rews'] = rng.normal(size=(e, 1)).astype(F32)
    with torch.no_grad():  # frames scaled to [0, 1] before obs - obs_next (no uint8 wrap-around)
        obs = torch.as_tensor(batch['rrd_obs'].reshape(e * k, 84, 84, 4)).float() / 255.0
        obs_next = torch.as_tensor(batch['rrd_obs_next'].reshape(e * k, 84, 84, 4)).float() / 255.0
        head = agent.reward_net.head(agent.reward_net.torso(torch.cat([obs, obs - obs_next], dim=-1)))
        r = head.gather(1, torch.as_tensor(batch['rrd_acts'].reshape(-1, 1))).view(e, k)
        r_loss = float(((r.mean(1, keepdim=True) - torch.as_tensor(batch['rrd_rews'])) ** 2).mean())
    before = [p.detach().clone() for p in agent.reward_net.parameters()]
    info = info_floats(agent.train(batch))
    assert set(info) == {'Q_loss', 'R_loss'} and np.isfinite(info['Q_loss'])
    assert info['R_loss'] == pytest.approx(r_loss, rel=1e-5)
    assert any(not torch.equal(p, b) for p, b in zip(agent.reward_net.parameters(), before))
