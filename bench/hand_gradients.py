"""A lever measured, not shipped: the SAC and RRD-SAC update with hand-derived gradients, no autograd.

Every network is an MLP (linear + ReLU), so each backward pass can be written out: the weight
gradient g^T h, the bias gradient sum(g), and g W masked by the ReLU for the layer below. The
SAC-specific parts are the squashed Gaussian's derivatives (tanh, the clipped log-std, the
std floor, the log-probability) and the min over the twin critics. It runs the shipped update's
arithmetic (same losses, same noise, same fused Adam step) with the autograd engine and its
per-op bookkeeping taken out, which measures how much of the fp32 gap to TF that bookkeeping is.

Not shipped because every loss would exist twice, once as the readable loss and once as its
hand-derived gradient: a researcher who edits a loss would have to edit the derivative too.
`install(agent)` replaces the agent's update (one thread, `--rrd_bias_correction` off) and
checks its gradients against autograd's on the first batch it sees.

    python bench/levers.py --algs sac rrd-sac --variants "default (as shipped)" "default + hand-derived gradients"
"""
import math

import torch
import torch.nn as nn

from utils.torch_utils import step_optimizers

HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


def layers(module):
    return [(layer.weight, layer.bias) for layer in module.net if isinstance(layer, nn.Linear)]


def forward(mlp, x):
    """The MLP's output and its layer inputs (the backward pass's tape)."""
    tape = [x]
    for index, (weight, bias) in enumerate(mlp):
        x = torch.addmm(bias, x, weight.t())
        if index < len(mlp) - 1:
            x = x.relu_()
        tape.append(x)
    return x, tape[:-1]


def backward(mlp, tape, grad, weights=True, input_from=None):
    """[(weight gradient, bias gradient)] per layer when `weights`, and the gradient of the input
    columns from `input_from` on (None: none)."""
    grads = []
    for index in reversed(range(len(mlp))):
        if weights:
            grads.insert(0, (grad.t() @ tape[index], grad.sum(0)))
        if index > 0:
            grad = torch.ops.aten.threshold_backward(grad @ mlp[index][0], tape[index], 0.0)
    if input_from is None:
        return grads, None
    # The columns as a contiguous [in, out] copy: MKL is slow with a strided slice (input_gradient_mlp).
    return grads, grad @ mlp[0][0][:, input_from:].t().contiguous().t()


def squashed_gaussian(out, noise):
    """SAC's policy head (MLPStochasticPolicy) with what its derivatives need."""
    mean, raw_log_std = out.chunk(2, dim=-1)
    log_std = raw_log_std.clamp(-20.0, 2.0)
    std = log_std.exp().clamp(min=1e-2)
    u = mean + std * noise
    action = torch.tanh(u)
    z = (u - mean) / std
    log_p = (-HALF_LOG_2PI - log_std - 0.5 * z * z).sum(-1, keepdim=True) \
        - torch.log(1.0 - action.square() + 1e-6).sum(-1, keepdim=True)
    return action, log_p, (mean, raw_log_std, log_std, std, u, z)


def head_backward(grad_action, grad_log_p, head, action, noise):
    """d loss / d policy output from d loss / d action and d loss / d log_p (a scalar or [B, 1]),
    through every path autograd takes in `squashed_gaussian`: tanh, the log-prob and its z."""
    mean, raw_log_std, log_std, std, u, z = head
    grad_action = grad_action + grad_log_p * 2.0 * action / (1.0 - action.square() + 1e-6)
    grad_u = grad_action * (1.0 - action.square()) - grad_log_p * z / std
    grad_mean = grad_u + grad_log_p * z / std
    grad_std = grad_u * noise + grad_log_p * z * (u - mean) / std.square()
    grad_log_std = grad_std * std * (log_std.exp() >= 1e-2) - grad_log_p
    grad_raw = grad_log_std * ((raw_log_std >= -20.0) & (raw_log_std <= 2.0))
    return torch.cat([grad_mean, grad_raw], dim=-1)


def sac_gradients(agent, batch, rews):
    """{parameter: gradient} of SAC's policy, critic and temperature losses, and the info values."""
    pi, q1, q2 = layers(agent.pi), layers(agent.q1), layers(agent.q2)
    obs, obs_next, acts = agent.preprocess_obs(batch['obs']), agent.preprocess_obs(batch['obs_next']), batch['acts']
    size, obs_dim = obs.shape
    log_alpha = agent.temperature.log_alpha
    alpha = log_alpha.exp()
    # Critic: squared TD errors of both critics against the entropy-regularised target.
    action_next, log_p_next, _ = squashed_gaussian(forward(pi, obs_next)[0], batch['pi_next_noise'])
    inputs_next = torch.cat([obs_next, action_next], dim=-1)
    v_next = torch.min(forward(layers(agent.q1_target), inputs_next)[0],
                       forward(layers(agent.q2_target), inputs_next)[0]) - alpha * log_p_next
    target = rews + (1.0 - batch['done']) * agent.args.gamma * v_next
    inputs = torch.cat([obs, acts], dim=-1)
    (value1, tape1), (value2, tape2) = forward(q1, inputs), forward(q2, inputs)
    q_loss = (value1 - target).square().mean() + (value2 - target).square().mean()
    grads_q1, _ = backward(q1, tape1, (value1 - target) * (2.0 / size))
    grads_q2, _ = backward(q2, tape2, (value2 - target) * (2.0 / size))
    # Policy: alpha log_p - min(q1, q2) at the sampled action; the critics pass gradients to the
    # action columns only.
    out, tape_pi = forward(pi, obs)
    action, log_p, head = squashed_gaussian(out, batch['pi_noise'])
    inputs = torch.cat([obs, action], dim=-1)
    (value1, tape1), (value2, tape2) = forward(q1, inputs), forward(q2, inputs)
    pi_loss = (alpha * log_p - torch.min(value1, value2)).mean()
    first = value1 < value2
    grad_action = (backward(q1, tape1, first * (-1.0 / size), weights=False, input_from=obs_dim)[1]
                   + backward(q2, tape2, ~first * (-1.0 / size), weights=False, input_from=obs_dim)[1])
    grads_pi, _ = backward(pi, tape_pi, head_backward(grad_action, alpha / size, head, action, batch['pi_noise']))
    grads = {param: grad for mlp, mlp_grads in ((pi, grads_pi), (q1, grads_q1), (q2, grads_q2))
             for layer, layer_grads in zip(mlp, mlp_grads) for param, grad in zip(layer, layer_grads)}
    if agent.args.alpha_lr > 0:
        grads[log_alpha] = -(log_p.mean() + agent.target_entropy)
    return grads, {'Pi_loss': pi_loss, 'Q_loss': q_loss, 'Alpha': alpha}


def reward_gradients(agent, batch):
    """{parameter: gradient} of RRD's return-decomposition loss, the proxy rewards, the info."""
    net = layers(agent.reward_net)

    def reward_inputs(obs, acts, obs_next):
        obs, obs_next = agent.preprocess_obs(obs), agent.preprocess_obs(obs_next)
        return torch.cat([obs, acts, obs - obs_next], dim=-1)
    rews = forward(net, reward_inputs(batch['obs'], batch['acts'], batch['obs_next']))[0]
    episodes, samples = batch['rrd_obs'].shape[:2]
    rrd_r, tape = forward(net, reward_inputs(batch['rrd_obs'].flatten(0, 1), batch['rrd_acts'].flatten(0, 1),
                                             batch['rrd_obs_next'].flatten(0, 1)))
    error = rrd_r.view(episodes, samples).mean(dim=1, keepdim=True) - batch['rrd_rews']
    grad = (error * (2.0 / (episodes * samples))).expand(episodes, samples).reshape(-1, 1)
    grads, _ = backward(net, tape, grad)
    return {param: g for layer, layer_grads in zip(net, grads) for param, g in zip(layer, layer_grads)}, rews, \
        {'R_loss': error.square().mean()}


def install(agent):
    """Replace `agent.update` with the hand-derived update (SAC, or RRD over SAC)."""
    rrd = hasattr(agent, 'reward_net')
    if type(agent).__name__ not in ('SAC', 'RRDSAC') or getattr(agent.args, 'rrd_bias_correction', False):
        raise ValueError('hand-derived gradients exist for SAC and RRD-SAC without --rrd_bias_correction only')
    optimizers = [agent.pi_optimizer, agent.q_optimizer] + ([agent.alpha_optimizer] if agent.args.alpha_lr > 0 else []) \
        + ([agent.r_optimizer] if rrd else [])
    checked = []

    @torch.no_grad()
    def gradients(batch):
        grads, info = {}, {}
        rews = batch['rews']
        if rrd:
            grads, rews, info = reward_gradients(agent, batch)
        sac_grads, sac_info = sac_gradients(agent, batch, rews)
        return {**grads, **sac_grads}, {**sac_info, **info}

    def update(kind, batch):
        batch = agent.to_tensors(batch)
        batch.update(agent.draw_noise(['pi_losses', 'q_losses'], batch))
        grads, info = gradients(batch)
        if not checked:
            check(agent, batch, grads)
            checked.append(True)
        for param, grad in grads.items():
            param.grad = grad.reshape(param.shape)
        step_optimizers(optimizers)
        return info
    agent.update = update


def check(agent, batch, grads, tolerance=1e-4):
    """Autograd's gradients of the shipped losses on `batch` (same noise) equal the hand-derived ones."""
    updates, _ = agent.run_losses(['pi_losses', 'q_losses'], batch)
    agent.gradients(updates)
    for param, grad in grads.items():
        error = (param.grad - grad.reshape(param.shape)).abs().max() / param.grad.abs().max().clamp(min=1e-12)
        if error > tolerance:
            raise AssertionError(f'hand-derived gradient of a {tuple(param.shape)} parameter is off by {error:.1e}')
