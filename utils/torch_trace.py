"""Traced updates (--traced_update, on by default on a CPU): an update's losses and backward pass
recorded once as the list of tensor operations they ran, then replayed without autograd.

On these small MLPs eager autograd spends about 15-20% of an update on bookkeeping around the
arithmetic: building the graph, saving tensors, running the engine (bench/RESULTS.md). A replay
runs the operations autograd ran, in the order it ran them, so its losses and gradients are the
eager ones bit for bit: checked when a graph is recorded, and again every `CHECK_EVERY` replays.

What a recording fixes: whatever the loss functions decide in Python. A new batch layout (keys,
shapes, dtypes) records again; Python numbers (flags, constants) are read once. A loss that reads
a value which changes during training must keep it in a tensor, as the agents here do with alpha.
If a replay and the eager losses ever disagree, the agent says so and runs eagerly from then on;
a loss that reads a tensor's value in Python (`.item()`, `if tensor:`) is never replayed. A
replay calls no module's Python code: forward hooks fire only while an update is recorded (or
eager), so an agent that is probed with hooks must run eagerly (`agent.traced_losses = None`).
"""
import threading

import torch
from torch.fx.experimental.proxy_tensor import make_fx

CHECK_EVERY = 1000  # replays between comparisons with the eager losses (one eager pass each: ~0.1%)
RECORDING = threading.Lock()  # one recording at a time (parallel branches record on two threads)
FRESH_OUTPUTS = {torch.ops.aten.addmm.default, torch.ops.aten.mm.default, torch.ops.aten.add.Tensor,
                 torch.ops.aten.convolution.default}  # ops whose output is a new tensor, never a view
VIEWS_TO_DROP = {torch.ops.aten.detach.default, torch.ops.aten.alias.default}  # no autograd in a replay


class NotReplayable(Exception):
    pass


def layout(batch):
    return tuple((key, tuple(value.shape), value.dtype) for key, value in sorted(batch.items()))


def all_same(tensors, others):
    """Bit-for-bit equal tensors, pairwise (NaN against NaN counts as equal; None against None)."""
    def same(a, b):
        if a is None or b is None:
            return a is b
        return a.shape == b.shape and bool(((a == b) | (a.isnan() & b.isnan())).all())
    return len(tensors) == len(others) and all(same(a, b) for a, b in zip(tensors, others))


class Replay:
    """One recorded graph: the loss functions `names` on one batch layout."""

    def __init__(self, agent, names, batch):
        self.agent, self.names, self.keys = agent, names, sorted(batch)
        modules = {id(m): m for m in agent.checkpoint_state().values() if isinstance(m, torch.nn.Module)}
        tensors = {id(t): t for m in modules.values() for t in (*m.parameters(), *m.buffers())}
        self.state = list(tensors.values())  # every tensor the losses may read: inputs, not constants
        rng = torch.get_rng_state()
        eager = {}

        def losses_and_gradients(*inputs):
            optimizers, grads, info = self.eager(dict(zip(self.keys, inputs[len(self.state):])))
            eager.update(optimizers=optimizers, outputs=[*grads, *info.values()], info_keys=list(info))
            return tuple(eager['outputs'])
        try:
            self.graph = make_fx(losses_and_gradients)(*self.state, *self.inputs(batch))
        except RuntimeError as error:  # the eager update that follows shows a loss's own errors
            if '_local_scalar_dense' not in str(error):
                raise NotReplayable(f'{", ".join(names)} could not be recorded ({str(error).splitlines()[0]})')
            raise NotReplayable(f'{", ".join(names)} read a tensor\'s value in Python (.item() or a branch on a tensor)')
        self.optimizers, self.info_keys = eager['optimizers'], eager['info_keys']
        self.params = [param for optimizer in self.optimizers for group in optimizer.param_groups
                       for param in group['params']]
        torch.set_rng_state(rng)  # the replay draws what the recording drew: an eager update's draws
        try:
            self.simplify()
            grads, info = self.replay(batch)
        except Exception as error:  # a graph that cannot run is one the agent does without
            raise NotReplayable(f'the replay of {", ".join(names)} failed ({str(error).splitlines()[0]})')
        if not all_same([*grads, *info.values()], eager['outputs']):
            raise NotReplayable(f'the replay of {", ".join(names)} differs from its recording')
        # autograd stores a gradient in .grad laid out as its parameter (a conv kernel's gradient
        # comes channels-last from channels-last frames); the fused Adam step reads them so
        self.relayout = [grad is not None and grad.stride() != param.stride() for grad, param in zip(grads, self.params)]
        self.replays = 0

    def inputs(self, batch):
        return [batch[key] for key in self.keys]

    def eager(self, batch):
        """(optimisers, gradients, info): the losses' gradients by autograd, without touching .grad."""
        updates, info = self.agent.run_losses(self.names, batch)
        optimizers = [optimizer for _, optimizer in updates]
        params = [param for optimizer in optimizers for group in optimizer.param_groups for param in group['params']]
        grads = torch.autograd.grad([loss for loss, _ in updates], params, allow_unused=True)
        return optimizers, grads, info

    def simplify(self):
        """Drop autograd's detach/alias views; let ReLU overwrite a product only it reads (the
        eager forward allocates a second buffer, and that extra pass shows at these sizes); call
        each operation through torch's Python binding where it has one (~1 us less per call than
        through the operator overload). The arithmetic is unchanged: the replay is checked."""
        graph = self.graph.graph
        for node in list(graph.nodes):
            if node.op != 'call_function':
                continue
            if node.target in VIEWS_TO_DROP:
                node.replace_all_uses_with(node.args[0])
                graph.erase_node(node)
            elif node.target is torch.ops.aten.relu.default and len(node.args[0].users) == 1 and \
                    node.args[0].target in FRESH_OUTPUTS:
                node.target = torch.ops.aten.relu_.default
        for node in graph.nodes:
            if node.op == 'call_function' and isinstance(node.target, torch._ops.OpOverload):
                name = node.target._schema.name.split('::')[1]
                node.target = getattr(torch._C._VariableFunctions, name, None) or \
                    getattr(torch.Tensor, name, None) or node.target
        graph._codegen = torch.fx.graph.CodeGen()  # positional inputs, a tuple out: no pytree work per call
        self.graph.recompile()

    @torch.no_grad()
    def replay(self, batch):
        outputs = self.graph(*self.state, *self.inputs(batch))
        return outputs[:len(self.params)], dict(zip(self.info_keys, outputs[len(self.params):]))

    def __call__(self, batch):
        """(optimisers, info) with the gradients in the parameters' .grad; None (and the random
        state as it was) when the periodic comparison with the eager losses fails."""
        self.replays += 1
        check = self.replays % CHECK_EVERY == 0
        rng = torch.get_rng_state() if check else None
        grads, info = self.replay(batch)
        if check:
            after = torch.get_rng_state()
            torch.set_rng_state(rng)
            _, eager_grads, eager_info = self.eager(batch)
            if not all_same([*grads, *info.values()], [*eager_grads, *eager_info.values()]):
                torch.set_rng_state(rng)
                return None
            torch.set_rng_state(after)
        for param, grad, relayout in zip(self.params, grads, self.relayout):
            param.grad = torch.empty_like(param).copy_(grad) if relayout else grad
        return self.optimizers, info


class TracedLosses:
    """The agent's loss functions and their gradients, replayed: `traced(names, batch)` does what
    `BaseAgent.branch_gradients(names, batch)` does. A graph per (names, batch layout)."""

    def __init__(self, agent):
        self.agent, self.replays, self.failed = agent, {}, None

    def __call__(self, names, batch):
        key = (names, layout(batch))
        replay = self.replays.get(key)
        if replay is None:
            with RECORDING:
                rng = torch.get_rng_state()
                try:
                    replay = self.replays[key] = Replay(self.agent, names, batch)
                except NotReplayable as error:
                    torch.set_rng_state(rng)
                    return self.give_up(str(error), names, batch)
        result = replay(batch)
        if result is None:
            return self.give_up(f'a replay of {", ".join(names)} differed from the eager losses after '
                                f'{replay.replays} updates (a loss reads a Python value that changed?)', names, batch)
        return result

    def give_up(self, reason, names, batch):
        """Eager updates from here on; the agent reports why once (its `notices`)."""
        if self.failed is None:
            self.failed = reason
            self.agent.notices.append(f'warning: {reason}; the update runs eagerly from here '
                                      '(--traced_update False skips the recording)')
        return self.agent.eager_gradients(names, batch)
