"""Copy the complete state of an agent between the TensorFlow and the PyTorch backend.

The state is everything a checkpoint holds: networks, target networks, temperature, normaliser
statistics and optimiser state (Adam moments and step count, RMSProp mean square). Nothing is
listed per algorithm; the mapping follows from names:

- one rule for names: torch path `pi.net.0.weight` (module attribute, then the module's
  state_dict key) is TF variable `pi/net/0/kernel` ('.' -> '/', `weight` -> `kernel`);
  normaliser buffers and `temperature.log_alpha` follow the same rule;
- optimisers share their attribute name (`q_optimizer`, ...); a torch parameter's optimiser state
  is the TF slot of its twin variable (`optimizer.get_slot(var, 'm')`, named like
  `q1/net/0/kernel/q_optimizer`): Adam exp_avg/exp_avg_sq <-> m/v, RMSPropTF mean_square <-> rms;
- Adam's step count t (torch: per-parameter `step` and AdamTF's group `tf_step`) <->
  TF's `<opt>/beta1_power` and `<opt>/beta2_power`, which hold beta^(t+1) after t updates;
- `relayout` is the one place where layouts differ: kernels (and their slots) are [in, out]
  dense / HWIO conv in TF and [out, in] / OIHW in torch. Images need nothing else: the torch conv
  torso takes channels-last input and flattens channels-last, so the dense layer after it lines
  up without a permutation.

The only TF state without a torch twin is RMSProp's momentum slot: with momentum 0 it holds the
last update and is never read, so it is written as zeros and skipped by `state_diff`.

Both frameworks are imported here, which is why this lives in tools/ and not in algorithm/ or
utils/: either backend alone must keep working without the other framework installed.
"""
import math
import sys

if __name__ == '__main__':  # before the imports that need the repo on sys.path
    sys.exit('tools/weight_transfer.py is a library, not a command: convert checkpoints with '
             'python tools/convert_checkpoint.py --help')

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402

from utils.tf_utils import v1  # noqa: E402
from utils.torch_utils import AdamTF, RMSPropTF  # noqa: E402

SLOTS = {AdamTF: {'exp_avg': 'm', 'exp_avg_sq': 'v'}, RMSPropTF: {'mean_square': 'rms'}}
TF_ONLY_SLOTS = {RMSPropTF: ('momentum',)}  # no torch twin (see the module docstring)
SLOT_DEFAULTS = {'exp_avg': 0.0, 'exp_avg_sq': 0.0, 'mean_square': 1.0}  # state of a never-stepped optimiser
KERNEL_PERMUTATIONS = {2: (1, 0), 4: (3, 2, 0, 1)}  # TF -> torch: [in, out] -> [out, in]; HWIO -> OIHW


class TransferError(ValueError):
    """The two agents do not have the same state (other algorithm, flags or dimensions)."""


def tf_name(torch_name):
    """`pi.net.0.weight` -> `pi/net/0/kernel`: the one naming rule between the backends."""
    parts = torch_name.split('.')
    return '/'.join(parts[:-1] + ['kernel' if parts[-1] == 'weight' else parts[-1]])


def relayout(value, kernel, to_torch):
    """A tensor in one backend's layout in the other's; only kernels (and their slots) differ."""
    value = np.asarray(value)
    if not kernel or value.ndim not in KERNEL_PERMUTATIONS:
        return value
    permutation = KERNEL_PERMUTATIONS[value.ndim]
    return np.ascontiguousarray(value.transpose(permutation if to_torch else np.argsort(permutation)))


def is_kernel(torch_name):
    return torch_name.endswith('.weight')


# ---- the two agents' state ------------------------------------------------------------------------
def tf_variables(tf_agent):
    """Every global variable of the TF agent's graph by name, in creation order."""
    return {var.op.name: var for var in tf_agent.graph.get_collection(v1.GraphKeys.GLOBAL_VARIABLES)}


def read_tf(tf_agent):
    variables = tf_variables(tf_agent)
    return dict(zip(variables, tf_agent.sess.run(list(variables.values()))))


def write_tf(tf_agent, values):
    """Assign every variable of the TF agent, by feeding its initializer (the graph is finalised,
    so no assign ops can be added).

    Every value is copied first: TF may adopt a fed array's memory as the variable's buffer, and
    the values of `torch_to_tf_values` are numpy views of the torch agent's tensors, so without
    the copy the two agents would share (and both train) the same memory."""
    variables = tf_variables(tf_agent)
    check_same_names(set(variables), set(values), 'TF variables')
    feed = {}
    for name, var in variables.items():
        value = np.array(values[name], dtype=var.dtype.base_dtype.as_numpy_dtype, copy=True)
        if tuple(value.shape) != tuple(var.shape.as_list()):
            raise TransferError(f'{name}: shape {tuple(var.shape.as_list())} in TF, {value.shape} from torch')
        feed[var.initializer.inputs[1]] = value
    tf_agent.sess.run([var.initializer for var in variables.values()], feed)


def torch_modules(torch_agent):
    """Module name -> module, for every module a torch checkpoint holds (normaliser included)."""
    return {name: obj for name, obj in torch_agent.checkpoint_state().items() if isinstance(obj, nn.Module)}


def torch_optimizers(torch_agent):
    return {name: obj for name, obj in torch_agent.checkpoint_state().items()
            if isinstance(obj, torch.optim.Optimizer)}


def torch_param_names(torch_agent):
    return {param: f'{name}.{key}' for name, module in torch_modules(torch_agent).items()
            for key, param in module.named_parameters()}


def optimizer_kind(optimizer):
    kind = type(optimizer)
    if kind not in SLOTS:
        raise TransferError(f'no TF twin known for the torch optimiser {kind.__name__}')
    return kind


def twin_variable(variables, torch_key):
    name = tf_name(torch_key)
    if name not in variables:
        raise TransferError(f'the TF agent has no variable {name} for torch {torch_key}; '
                            'are both agents built from the same flags and dimensions?')
    return variables[name]


def twin_optimizer(tf_agent, opt_name):
    if getattr(tf_agent, opt_name, None) is None:
        raise TransferError(f'the TF agent has no {opt_name}; are both agents built from the same flags?')
    return getattr(tf_agent, opt_name)


def twin_slot(tf_optimizer, var, slot):
    """The name of TF's `slot` variable for `var` (e.g. `q1/net/0/kernel/q_optimizer_1` for Adam's v)."""
    slot_var = tf_optimizer.get_slot(var, slot)
    if slot_var is None:
        raise TransferError(f'the TF {tf_optimizer.get_name()} has no {slot!r} slot for {var.op.name}: '
                            'was it built with another --optimizer?')
    return slot_var.op.name


def check_same_names(have, want, what):
    missing, extra = sorted(want - have), sorted(have - want)
    if missing or extra:
        raise TransferError(f'{what} do not match: missing {missing[:5]}{"..." if len(missing) > 5 else ""}, '
                            f'unexpected {extra[:5]}{"..." if len(extra) > 5 else ""}; '
                            'are both agents built from the same flags and dimensions?')


# ---- Adam step count <-> TF beta powers -----------------------------------------------------------
def adam_steps(beta1_power, beta2_power, beta1, beta2):
    """Updates taken, from TF's beta powers (beta^(t+1) after t updates, accumulated in float32).

    beta1^(t+1) gives t exactly while it is a normal float32 (t < ~830), beta2^(t+1) up to
    ~87000 updates. Past that both have underflowed, TF's bias corrections are exactly 1, and
    the returned count is the first one where that holds, which gives the same updates.
    """
    tiny = np.finfo(np.float32).tiny
    for power, beta in ((beta1_power, beta1), (beta2_power, beta2)):
        if power >= tiny:
            return int(round(math.log(float(power)) / math.log(beta))) - 1
    return int(math.ceil(math.log(tiny) / math.log(beta2)))


def beta_powers(steps, beta1, beta2):
    """TF's beta1_power and beta2_power after `steps` updates (to a few float32 ulps of TF's
    running product)."""
    return np.float32(beta1 ** (steps + 1)), np.float32(beta2 ** (steps + 1))


# ---- torch -> TF ---------------------------------------------------------------------------------
def torch_to_tf_values(torch_agent, tf_agent):
    """The torch agent's state as TF variable values ({TF name: array in TF layout}), covering
    every TF variable (TF-only slots get their neutral value)."""
    values = {}
    for name, module in torch_modules(torch_agent).items():
        for key, tensor in module.state_dict().items():
            torch_key = f'{name}.{key}'
            values[tf_name(torch_key)] = relayout(tensor.detach().cpu().numpy(), is_kernel(torch_key), to_torch=False)
    variables, param_names = tf_variables(tf_agent), torch_param_names(torch_agent)
    for opt_name, optimizer in torch_optimizers(torch_agent).items():
        kind, tf_optimizer = optimizer_kind(optimizer), twin_optimizer(tf_agent, opt_name)
        for group in optimizer.param_groups:
            for param in group['params']:
                torch_key = param_names[param]
                var, state = twin_variable(variables, torch_key), optimizer.state.get(param, {})
                if state and not set(SLOTS[kind]) <= set(state):
                    raise TransferError(f'{opt_name} holds {sorted(state)} for {torch_key}, not the {kind.__name__} '
                                        f'state {sorted(SLOTS[kind])}: was it saved with another --optimizer?')
                for torch_slot, slot in SLOTS[kind].items():
                    value = state[torch_slot].detach().cpu().numpy() if state \
                        else np.full(param.shape, SLOT_DEFAULTS[torch_slot], np.float32)
                    values[twin_slot(tf_optimizer, var, slot)] = relayout(value, is_kernel(torch_key), False)
                for slot in TF_ONLY_SLOTS.get(kind, ()):
                    values[twin_slot(tf_optimizer, var, slot)] = np.zeros(var.shape.as_list(), np.float32)
            if kind is AdamTF:
                powers = beta_powers(group['tf_step'], *group['betas'])
                values[f'{opt_name}/beta1_power'], values[f'{opt_name}/beta2_power'] = powers
    return values


def torch_to_tf(torch_agent, tf_agent):
    """Copy the torch agent's whole state into the TF agent."""
    write_tf(tf_agent, torch_to_tf_values(torch_agent, tf_agent))


# ---- TF -> torch ---------------------------------------------------------------------------------
def tf_to_torch_state(tf_values, torch_agent, tf_agent):
    """{checkpoint name: state_dict} for the torch agent, from TF variable values; every TF
    variable must be used (TF-only slots aside)."""
    used, state = set(), {}

    def take(name, torch_key=None):
        """The value of TF variable `name`, in torch's layout for `torch_key`'s tensor."""
        if name not in tf_values:
            raise TransferError(f'the TF agent has no variable {name} (for torch {torch_key or "Adam step count"}); '
                                'are both agents built from the same flags and dimensions?')
        used.add(name)
        if torch_key is None:
            return tf_values[name]
        return torch.from_numpy(relayout(tf_values[name], is_kernel(torch_key), to_torch=True).copy())

    for name, module in torch_modules(torch_agent).items():
        state[name] = {key: take(tf_name(f'{name}.{key}'), f'{name}.{key}') for key in module.state_dict()}
    variables, param_names = tf_variables(tf_agent), torch_param_names(torch_agent)
    for opt_name, optimizer in torch_optimizers(torch_agent).items():
        kind, tf_optimizer = optimizer_kind(optimizer), twin_optimizer(tf_agent, opt_name)
        saved = optimizer.state_dict()
        saved['state'], index = {}, 0
        for group, saved_group in zip(optimizer.param_groups, saved['param_groups']):
            if kind is AdamTF:
                powers = [take(f'{opt_name}/beta{i}_power') for i in (1, 2)]
                saved_group['tf_step'] = adam_steps(*powers, *group['betas'])
            for param in group['params']:
                torch_key = param_names[param]
                var = twin_variable(variables, torch_key)
                param_state = {torch_slot: take(twin_slot(tf_optimizer, var, slot), torch_key)
                               for torch_slot, slot in SLOTS[kind].items()}
                used.update(twin_slot(tf_optimizer, var, slot) for slot in TF_ONLY_SLOTS.get(kind, ()))
                if kind is AdamTF:
                    param_state['step'] = torch.tensor(float(saved_group['tf_step']))
                saved['state'][index] = param_state
                index += 1
        state[opt_name] = saved
    check_same_names(used, set(tf_values), 'TF variables and torch tensors')
    return state


def tf_to_torch(tf_agent, torch_agent):
    """Copy the TF agent's whole state into the torch agent."""
    state = tf_to_torch_state(read_tf(tf_agent), torch_agent, tf_agent)
    for name, obj in torch_agent.checkpoint_state().items():
        obj.load_state_dict(state[name])


# ---- comparison ----------------------------------------------------------------------------------
def tf_only_names(torch_agent, tf_agent):
    """TF variables without a torch twin: the RMSProp momentum slots."""
    variables, param_names = tf_variables(tf_agent), torch_param_names(torch_agent)
    return {twin_slot(twin_optimizer(tf_agent, opt_name), twin_variable(variables, param_names[param]), slot)
            for opt_name, optimizer in torch_optimizers(torch_agent).items()
            for slot in TF_ONLY_SLOTS.get(type(optimizer), ())
            for group in optimizer.param_groups for param in group['params']}


def state_diff(tf_agent, torch_agent):
    """[(TF name, max abs difference, that relative to the TF tensor's largest |value|)] for every
    state tensor with a twin, in the TF graph's creation order (normaliser, networks, targets,
    optimiser state)."""
    tf_values, torch_values, skip = read_tf(tf_agent), torch_to_tf_values(torch_agent, tf_agent), \
        tf_only_names(torch_agent, tf_agent)
    rows = []
    for name, value in tf_values.items():
        if name in skip:
            continue
        a, b = np.asarray(value, np.float64), np.asarray(torch_values[name], np.float64)
        diff = np.abs(a - b)
        largest = float(diff.max(initial=0.0))
        rows.append((name, largest, largest / max(float(np.abs(a).max(initial=0.0)), np.finfo(np.float32).tiny)))
    return rows
