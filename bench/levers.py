"""What each speed-up of the PyTorch update gives alone, against the eager reference form.

The reference is the port as it was before the speed-ups (project issue 10): the policy loss
reads the critics whole, one `autograd.grad` per optimiser, then each optimiser's own
`AdamTF.step` with torch's foreach Adam. Each lever is that reference with one change:

- one backward: one backward pass over all losses (the critics read through detached weights,
  still on the concatenated input, so the losses reach only their own parameters);
- fused Adam: `step_optimizers`, one fused Adam kernel per parameter group, called directly;
- split input gradient: the critics' first-layer kernel split so the policy loss's backward
  computes the action columns' input gradient only (`input_gradient_mlp`);
- default, eager: all three, run by autograd at every update (`--traced_update False`);
- default: that update recorded once and replayed without autograd (`--traced_update`, as the
  agents ship on a CPU; utils/torch_trace.py); then the opt-in --amp and --compile on top.
The levers that change the eager update's form (the three above, fused MLP) run eagerly.
Then levers tried on top of the default and not shipped, measured here so the verdict can be
re-checked on other hardware:
- flush denormals: the update with the CPU's flush-to-zero mode on, as TF's executor runs;
- fused MLP: each MLP one autograd node: oneDNN's fused linear + bias + ReLU forward
  (`torch.ops.mkldnn._linear_pointwise`, what TF's _FusedMatMul runs) and a hand-written backward
  that computes only the gradients asked for;
- hand-derived gradients (SAC and RRD-SAC): the whole update without autograd, every gradient
  written out (bench/hand_gradients.py; checked against autograd's on the first batch);
- losses on one thread (`--parallel_losses False`): with `--threads 2`, the shipped default runs
  the critic's losses on a second thread; this is the serial update with 2 intra-op threads.
The TF reference runs on the same batches, so every row also has its torch / TF ratio.

    python bench/levers.py [--algs sac rrd-sac] [--updates 200] [--repeats 3] [--threads 1] [--json out.json]
"""
import argparse
import functools
import json
import os
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from bench import hand_gradients  # noqa: E402
from bench.agent_speed import make_args, make_batches, race  # noqa: E402
from algorithm import create_agent  # noqa: E402

CRITICS = ('q', 'q1', 'q2')


def critics(agent):
    return [getattr(agent, name) for name in CRITICS if hasattr(agent, name)]


def whole_critics(agent):
    """The policy loss reads the critics whole: their parameters are in its graph."""
    for critic in critics(agent):
        critic.action_value = critic.forward


def detached_concat_critics(agent):
    """The critics read through detached weights, on the concatenated input (no split kernel)."""
    def value(net):
        def action_value(obs, acts):
            hidden = torch.cat([obs, acts], dim=-1)
            for layer in net:
                hidden = F.linear(hidden, layer.weight.detach(), layer.bias.detach()) \
                    if isinstance(layer, nn.Linear) else layer(hidden)
            return hidden
        return action_value

    for critic in critics(agent):
        critic.action_value = value(critic.net)


def per_optimizer_gradients(agent, fused_step):
    """One autograd.grad per optimiser; then `step_optimizers` (fused_step) or each AdamTF.step."""
    from utils.torch_utils import step_optimizers

    def apply_updates(updates):
        grads = [torch.autograd.grad(loss, opt.param_groups[0]['params'], retain_graph=True) for loss, opt in updates]
        for (_, opt), group_grads in zip(updates, grads):
            for param, grad in zip(opt.param_groups[0]['params'], group_grads):
                param.grad = grad
        if fused_step:
            step_optimizers([opt for _, opt in updates])
        else:
            for _, opt in updates:
                opt.step()
    agent.apply_updates = apply_updates


def foreach_adam(agent):
    """torch's foreach Adam inside AdamTF.step, as the reference port made its optimisers."""
    for name in agent.checkpoint_names:
        optimizer = getattr(agent, name)
        if isinstance(optimizer, torch.optim.Optimizer):
            for group in optimizer.param_groups:
                group.update(fused=False, foreach=True)


def reference(agent):
    whole_critics(agent)
    per_optimizer_gradients(agent, fused_step=False)
    foreach_adam(agent)


def one_backward(agent):
    detached_concat_critics(agent)
    foreach_adam(agent)

    def apply_updates(updates):
        for _, opt in updates:
            opt.zero_grad(set_to_none=True)
        torch.autograd.backward([loss for loss, _ in updates])
        for _, opt in updates:
            opt.step()
    agent.apply_updates = apply_updates


def fused_adam(agent):
    whole_critics(agent)
    per_optimizer_gradients(agent, fused_step=True)


def split_input_gradient(agent):
    per_optimizer_gradients(agent, fused_step=False)
    foreach_adam(agent)


def flush_denormals(agent):
    update = agent.update

    def flushed(kind, batch):
        torch.set_flush_denormal(True)
        try:
            return update(kind, batch)
        finally:
            torch.set_flush_denormal(False)
    agent.update = flushed


class FusedMLP(torch.autograd.Function):
    """An MLP's forward (oneDNN linear + bias + ReLU per hidden layer) as one autograd node."""

    @staticmethod
    def forward(ctx, x, *params):
        weights, biases = params[0::2], params[1::2]
        hiddens = [x]
        for index, (weight, bias) in enumerate(zip(weights, biases)):
            post_op = 'relu' if index < len(weights) - 1 else 'none'
            hiddens.append(torch.ops.mkldnn._linear_pointwise(hiddens[-1], weight, bias, post_op, [], ''))
        ctx.save_for_backward(*hiddens[:-1], *weights)
        return hiddens[-1]

    @staticmethod
    def backward(ctx, grad):
        saved = ctx.saved_tensors
        layers = len(saved) // 2
        hiddens, weights, needs = saved[:layers], saved[layers:], ctx.needs_input_grad
        grads = [None] * (2 * layers)
        for index in reversed(range(layers)):
            if index < layers - 1:
                grad = torch.ops.aten.threshold_backward(grad, hiddens[index + 1], 0)
            if needs[1 + 2 * index]:
                grads[2 * index] = grad.t().mm(hiddens[index])
            if needs[2 + 2 * index]:
                grads[2 * index + 1] = grad.sum(0)
            if index > 0 or needs[0]:
                grad = grad.mm(weights[index])
        return (grad if needs[0] else None, *grads)


def fused_mlp(agent):
    for module in list(vars(agent).values()):
        if not isinstance(module, nn.Module):
            continue
        for net in module.modules():
            if isinstance(net, nn.Sequential) and all(isinstance(layer, (nn.Linear, nn.ReLU)) for layer in net):
                params = [p for layer in net if isinstance(layer, nn.Linear) for p in (layer.weight, layer.bias)]
                net.forward = functools.partial(lambda params, x: FusedMLP.apply(x, *params), params)


EAGER = ('--traced_update', 'False')  # the levers that change the eager update's form
VARIANTS = {'reference (eager, before issue 10)': (reference, EAGER), 'one backward': (one_backward, EAGER),
            'fused Adam step': (fused_adam, EAGER), 'split input gradient': (split_input_gradient, EAGER),
            'default, eager (--traced_update False)': (None, EAGER),
            'default (as shipped)': (None, ()), 'default + --amp (bf16)': (None, ('--amp',)),
            'default + --compile': (None, ('--compile',)),
            'default + flush denormals': (flush_denormals, ()), 'default + fused MLP': (fused_mlp, EAGER),
            'default + hand-derived gradients': (hand_gradients.install, ()),
            'default, losses on one thread': (None, ('--parallel_losses', 'False'))}


def build(alg, threads, variant):
    change, flags = VARIANTS[variant]
    agent = create_agent(make_args(alg, 'torch', threads, flags))
    if change is not None:
        change(agent)
    return agent


def measure(alg, threads, updates, warmup, repeats, variants):
    """{'wall': {variant: updates/s}, 'cpu': {variant: updates per CPU second}} (with 'TF' among the
    variants) and, with --compile, 'compile seconds'."""
    torch.set_num_threads(threads)
    agents = {'TF': create_agent(make_args(alg, 'tf', threads))}
    agents.update({variant: build(alg, threads, variant) for variant in variants})
    batches = make_batches(agents['TF'].args, warmup + updates)
    compile_seconds = {}
    for variant, agent in agents.items():  # first calls (compilation) apart from the timed runs
        start = time.perf_counter()
        agent.train(batches[0])
        compile_seconds[variant] = time.perf_counter() - start
    wall, cpu = race(agents, batches, warmup, repeats)
    result = {'wall': wall, 'cpu': cpu}
    if 'default + --compile' in agents:
        result['compile seconds'] = compile_seconds['default + --compile']
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--algs', nargs='+', default=['sac', 'rrd-sac'])
    parser.add_argument('--updates', type=int, default=200)
    parser.add_argument('--warmup', type=int, default=20)
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--threads', type=int, default=1)
    parser.add_argument('--variants', nargs='+', choices=list(VARIANTS),
                        help='default: all (with one thread, all but "losses on one thread": the same update)')
    parser.add_argument('--json', help='also write the results to this file')
    options = parser.parse_args(argv)
    options.variants = options.variants or [name for name in VARIANTS if options.threads > 1 or
                                            name != 'default, losses on one thread']
    results = {}
    for alg in options.algs:
        result = results[alg] = measure(alg, options.threads, options.updates, options.warmup, options.repeats,
                                        options.variants)
        print(f'{alg} ({options.threads} thread(s)): TF {result["wall"]["TF"]:.1f} updates/s')
        for variant in options.variants:
            wall, cpu = result['wall'], result['cpu']
            print(f'  {variant:>36}: {wall[variant]:7.1f} updates/s   x{wall[variant] / wall[options.variants[0]]:.2f} '
                  f'vs reference (CPU time x{cpu[variant] / cpu[options.variants[0]]:.2f})   '
                  f'torch/TF {wall[variant] / wall["TF"]:.2f} (CPU time {cpu[variant] / cpu["TF"]:.2f})')
        if 'compile seconds' in result:
            print(f'  first --compile update took {result["compile seconds"]:.0f} s')
    if options.json:
        with open(options.json, 'w') as file:
            json.dump(results, file)


if __name__ == '__main__':
    main()
