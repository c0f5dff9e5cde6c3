"""PyTorch building blocks shared by every torch agent (twin of utils/tf_utils.py)."""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F


def get_vars(module):
    """Trainable parameters of a module (or a list of modules), in definition order."""
    modules = module if isinstance(module, (list, tuple)) else [module]
    return [p for m in modules for p in m.parameters() if p.requires_grad]


def dense(in_dim, out_dim):
    """Linear layer initialised as in the TF reference: Glorot-uniform kernel, zero bias."""
    layer = nn.Linear(in_dim, out_dim)
    nn.init.xavier_uniform_(layer.weight)
    nn.init.zeros_(layer.bias)
    return layer


class SameConv2d(nn.Conv2d):
    """Conv layer with TF padding='SAME' (the odd pixel goes bottom/right), Glorot kernel, zero bias."""

    def __init__(self, in_channels, out_channels, kernel_size, stride):
        super().__init__(in_channels, out_channels, kernel_size, stride)
        nn.init.xavier_uniform_(self.weight)
        nn.init.zeros_(self.bias)

    def same_padding(self, size):
        """TF's (before, after) padding of a spatial dim of `size`: the odd pixel goes after."""
        k, s = self.kernel_size[0], self.stride[0]
        total = max((math.ceil(size / s) - 1) * s + k - size, 0)
        return total // 2, total - total // 2

    def forward(self, x):
        (top, bottom), (left, right) = (self.same_padding(size) for size in x.shape[-2:])
        if top == bottom and left == right:  # even: the conv pads, without a padded copy
            return F.conv2d(x, self.weight, self.bias, self.stride, (top, left))
        return super().forward(F.pad(x, (left, right, top, bottom)))

    def forward_mirrored(self, x):
        """This layer on input mirrored in both spatial dims: the mirrored output, with no padded
        copy. Mirrored, TF's odd pixel of padding comes first, so an even padding of the larger
        side starts every window exactly where TF's starts (the padding it adds at the end is read
        by at most one surplus output, at stride 1, which is cut off). That holds when TF's last
        window reaches the input's end, as in the Atari torso; otherwise this mirrors `forward`."""
        k, s = self.kernel_size[0], self.stride[0]
        rows, cols = (math.ceil(size / s) for size in x.shape[-2:])
        if min((rows - 1) * s + k - x.shape[-2], (cols - 1) * s + k - x.shape[-1]) < 0:
            return self(x.flip(2, 3)).flip(2, 3)
        (_, bottom), (_, right) = (self.same_padding(size) for size in x.shape[-2:])
        return F.conv2d(x, self.weight.flip(2, 3), self.bias, self.stride, (bottom, right))[..., :rows, :cols]


def input_gradient_mlp(net, data, inputs):
    """`net(concat(data, inputs))` with gradients for `inputs` only: no parameter gradients
    (the weights are detached) and none for the `data` columns.

    A policy loss reads the critic this way. Splitting the first layer's kernel into its data
    and input columns means backward computes the thin product for the input columns alone,
    instead of an input gradient for every column of the concatenation (the [256, 256] x
    [256, obs + act] product MKL is slow at); the data part needs no backward at all.
    """
    first, split = net[0], data.shape[-1]
    weight = first.weight.detach()
    # The input columns as a contiguous [in, out] copy: the input gradient is then a product with
    # a transposed operand, which MKL runs ~2.5x faster than one with the strided column slice.
    input_kernel = weight[:, split:].t().contiguous()
    hidden = torch.addmm(first.bias.detach(), data, weight[:, :split].t()) + inputs @ input_kernel
    for layer in net[1:]:
        hidden = F.linear(hidden, layer.weight.detach(), layer.bias.detach()) if isinstance(layer, nn.Linear) \
            else layer(hidden)
    return hidden


def mlp(in_dim, hidden, out_dim):
    """Dense(h) + ReLU for each hidden size, then a linear Dense(out_dim)."""
    layers, last = [], in_dim
    for h in hidden:
        layers += [dense(last, h), nn.ReLU()]
        last = h
    layers.append(dense(last, out_dim))
    return nn.Sequential(*layers)


class ConvTorso(nn.Module):
    """The DQN (Nature) conv stack on channels-last uint8-scaled images, flattened.

    The public interface is channels-last ([B, 84, 84, C]) as in the TF reference; the
    transpose to channels-first happens here, once. Flattening is done in channels-last order
    so a dense kernel transferred from TF lines up without a permutation.
    """

    def __init__(self, in_channels, image_hw=(84, 84)):
        super().__init__()
        self.convs = nn.Sequential(
            SameConv2d(in_channels, 32, 8, 4), nn.ReLU(),
            SameConv2d(32, 64, 4, 2), nn.ReLU(),
            SameConv2d(64, 64, 3, 1), nn.ReLU(),
        )
        h, w = image_hw
        for stride in (4, 2, 1):
            h, w = math.ceil(h / stride), math.ceil(w / stride)
        self.out_dim = h * w * 64

    def forward(self, images):
        """Runs on the mirrored frames: TF pads the second layer unevenly, which torch's convolution
        can only do on a padded copy; mirrored, every layer pads evenly (SameConv2d.forward_mirrored).
        The outputs are TF's, mirrored back; the mirroring costs less than the copy it saves."""
        hidden = images.flip(1, 2).permute(0, 3, 1, 2)
        for layer in self.convs:
            hidden = layer.forward_mirrored(hidden) if isinstance(layer, SameConv2d) else layer(hidden)
        return hidden.flip(2, 3).permute(0, 2, 3, 1).flatten(1)


class RandomNormal:
    """Diagonal Gaussian parameterised by mean and log-std (std floored), as in the TF twin."""

    def __init__(self, mean, log_std, std_floor=0.0):
        self.mean, self.log_std = mean, log_std
        self.std = torch.clamp(torch.exp(log_std), min=std_floor) if std_floor > 0 else torch.exp(log_std)

    def sample(self, noise=None):
        if noise is None:
            noise = torch.randn_like(self.mean)
        return self.mean + self.std * noise

    def log_p(self, x):
        z = (x - self.mean) / self.std
        return torch.sum(-0.5 * math.log(2.0 * math.pi) - self.log_std - 0.5 * z * z, dim=-1, keepdim=True)

    def entropy(self):
        return torch.sum(self.log_std + 0.5 * math.log(2.0 * math.pi * math.e), dim=-1, keepdim=True)

    def kl(self, other):
        var, other_var = self.std ** 2, other.std ** 2
        return torch.sum(other.log_std - self.log_std + (var + (self.mean - other.mean) ** 2) / (2.0 * other_var) - 0.5,
                         dim=-1, keepdim=True)


class Normalizer(nn.Module):
    """Running observation normaliser (docs/algorithms.md section 4); its statistics are checkpointed buffers.

    Sums are float32 like the TF reference's variables; mean and std are recomputed after each
    update rather than on every forward pass.
    """

    def __init__(self, shape, eps_std=1e-2, norm_clip=5.0):
        super().__init__()
        self.eps_std, self.norm_clip = eps_std, norm_clip
        self.register_buffer('sum', torch.zeros(shape))
        self.register_buffer('sum_sqr', torch.zeros(shape))
        self.register_buffer('cnt', torch.zeros(1))
        self.register_buffer('mean', torch.zeros(shape))
        self.register_buffer('std', torch.ones(shape))

    @torch.no_grad()
    def update(self, inputs):
        inputs = torch.as_tensor(inputs, dtype=torch.float32, device=self.sum.device)
        inputs = inputs.reshape(-1, *self.sum.shape)
        self.sum += inputs.sum(dim=0)
        self.sum_sqr += inputs.square().sum(dim=0)
        self.cnt += inputs.shape[0]
        self.mean.copy_(self.sum / self.cnt)
        self.std.copy_(torch.clamp(torch.sqrt(torch.clamp(self.sum_sqr / self.cnt - self.mean.square(), min=0.0)),
                                   min=self.eps_std))

    def normalize(self, inputs):
        return torch.clamp((inputs - self.mean) / self.std, -self.norm_clip, self.norm_clip)


def polyak_update(targets, sources, polyak):
    """theta_t <- polyak * theta_t + (1 - polyak) * theta, for all tensors in one fused call."""
    with torch.no_grad():
        torch._foreach_lerp_(targets, sources, 1.0 - polyak)


def hard_update(targets, sources):
    with torch.no_grad():
        torch._foreach_copy_(targets, sources)


def select_action_values(values, acts):
    """Pick values[b, acts[b]]: the one-hot product sum(values * onehot(acts)) of the TF twin."""
    return values.gather(-1, acts.long().unsqueeze(-1))


@torch.no_grad()
def step_optimizers(optimizers):
    """Step several optimisers; each AdamTF parameter group is one fused Adam kernel call.

    Same arithmetic and state as AdamTF.step (moments, per-parameter step counts, `tf_step`,
    `eps`), so checkpoints and the weight transfer see no difference, without torch.optim's
    per-call Python bookkeeping. Other optimisers (RMSPropTF) take their own step.
    """
    for optimizer in optimizers:
        if not isinstance(optimizer, AdamTF):
            optimizer.step()
            continue
        for group in optimizer.param_groups:
            AdamTF.advance(group)
            params = [param for param in group['params'] if param.grad is not None]
            if not params:
                continue
            states = [optimizer.state[param] for param in params]
            for param, state in zip(params, states):
                if not state:
                    state.update(step=torch.zeros((), device=param.device), exp_avg=torch.zeros_like(param),
                                 exp_avg_sq=torch.zeros_like(param))
                elif state['step'].device != param.device:  # loaded from a foreach Adam's CPU-side count
                    state['step'] = state['step'].to(param.device)
            beta1, beta2 = group['betas']
            steps = [state['step'] for state in states]
            torch._foreach_add_(steps, 1.0)  # the kernel reads the count; torch.optim advances it first
            torch._fused_adam_(params, [param.grad for param in params], [state['exp_avg'] for state in states],
                               [state['exp_avg_sq'] for state in states], [], steps,
                               lr=group['lr'], beta1=beta1, beta2=beta2, weight_decay=0.0, eps=group['eps'],
                               amsgrad=False, maximize=False)


class AdamTF(torch.optim.Adam):
    """torch's Adam with TensorFlow 1's epsilon, so both backends take the same steps.

    TF adds epsilon to sqrt(v) before the bias correction, which is torch's rule with
    eps / sqrt(1 - beta2^t); the difference is large early on with DQN's Adam_eps = 1.5e-4.
    The step count lives in the param group so checkpoints carry it.
    """

    def __init__(self, params, lr, eps=1e-8, **kwargs):
        super().__init__(params, lr=lr, eps=eps, **kwargs)
        for group in self.param_groups:
            group.setdefault('tf_eps', eps)
            group.setdefault('tf_step', 0)

    @staticmethod
    def advance(group):
        """Count one more step and set the epsilon of TF's rule for it."""
        group['tf_step'] += 1
        group['eps'] = group['tf_eps'] / math.sqrt(1.0 - group['betas'][1] ** group['tf_step'])

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            self.advance(group)
        return super().step(closure)


class RMSPropTF(torch.optim.Optimizer):
    """RMSProp with TensorFlow 1 semantics, so DQN runs match the reference backend.

    torch.optim.RMSprop differs in two ways that matter with DQN's large epsilon: the mean
    square starts at 1 (not 0) in TF, and TF adds epsilon inside the square root.
    """

    def __init__(self, params, lr, decay=0.9, eps=1e-10):
        super().__init__(params, dict(lr=lr, decay=decay, eps=eps))

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            for param in group['params']:
                if param.grad is None:
                    continue
                state = self.state[param]
                if not state:
                    state['mean_square'] = torch.ones_like(param)
                mean_square = state['mean_square']
                mean_square.lerp_(param.grad.square(), 1.0 - group['decay'])
                param.addcdiv_(param.grad, (mean_square + group['eps']).sqrt(), value=-group['lr'])
