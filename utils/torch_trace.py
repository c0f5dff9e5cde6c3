"""Traced updates (--traced_update, on by default on a CPU): an update's losses and backward pass
recorded once as the list of tensor operations they ran, then replayed without autograd.

On these small MLPs eager autograd spends about 15-20% of an update on bookkeeping around the
arithmetic: building the graph, saving tensors, running the engine (bench/RESULTS.md). A replay
runs the operations autograd ran, in the order it ran them, so its losses and gradients are the
eager ones bit for bit: checked when a graph is recorded, at its 1st, 10th and 100th replay, and
every `CHECK_EVERY` replays after that. The recording itself runs the losses on the real tensors
and stands as that update. torch's random draws inside a loss are replayed as draws.

What a recording fixes: whatever the loss functions decide in Python. A new batch layout (keys,
shapes, strides, dtypes) records again; Python numbers (flags, constants, numpy draws) are read
once. A value that changes during training must live in a tensor of the agent's modules (a
buffer, changed in place), as alpha does; if a check finds a replay that differs from the eager
losses, the agent says so and runs eagerly from then on (the replays since the last check used
the recorded value). Losses the recording can tell apart are never replayed: those that read a
tensor's value in Python (`.item()`, `float()`, `if tensor:`, `.tolist()`, `.numpy()`) or write
into a parameter, buffer or batch tensor (a running statistic; also through `out=` or a view).
A replay calls no module's Python code: forward hooks fire only while an update is recorded (or
eager), so an agent that is probed with hooks must run eagerly (`agent.traced_losses = None`).
"""
import contextlib
import operator
import threading

import torch
from torch.fx.experimental.proxy_tensor import make_fx

CHECK_EVERY = 1000  # replays between comparisons with the eager losses (one eager pass each: ~0.1%)
EARLY_CHECKS = (1, 10, 100)  # and these replays: a frozen value shows on the first batches that differ
HOST_READS = ('item', 'tolist', 'numpy', '__array__', '__float__', '__int__', '__index__',
              '__bool__')  # Tensor methods that hand values to Python
RECORDING = threading.Lock()  # one recording at a time (parallel branches record on two threads)
FRESH_OUTPUTS = {torch.ops.aten.addmm.default, torch.ops.aten.mm.default, torch.ops.aten.add.Tensor,
                 torch.ops.aten.convolution.default}  # ops whose output is a new tensor, never a view
VIEWS_TO_DROP = {torch.ops.aten.detach.default, torch.ops.aten.alias.default}  # no autograd in a replay


class NotReplayable(Exception):
    pass


def parameters(optimizers):
    return [param for optimizer in optimizers for group in optimizer.param_groups for param in group['params']]


def layout(batch):
    return tuple((key, value.shape, value.stride(), value.dtype) for key, value in sorted(batch.items()))


def all_same(tensors, others):
    """Bit-for-bit equal tensors, pairwise (None against None)."""
    def same(a, b):
        if a is None or b is None:
            return a is b
        return (a.shape == b.shape and a.dtype == b.dtype and
                torch.equal(a.reshape(-1).view(torch.uint8), b.reshape(-1).view(torch.uint8)))
    return len(tensors) == len(others) and all(same(a, b) for a, b in zip(tensors, others))


@contextlib.contextmanager
def host_reads_refused():
    """Tensor methods that hand values to Python raise while this thread records (the other
    branch's thread may run an eager loss meanwhile, untouched)."""
    recorder, originals = threading.get_ident(), {name: getattr(torch.Tensor, name) for name in HOST_READS}
    own = {name: torch.Tensor.__dict__[name] for name in HOST_READS if name in torch.Tensor.__dict__}

    def refusing(name):
        def method(self, *args, **kwargs):
            if threading.get_ident() == recorder:
                raise NotReplayable(f'read a tensor\'s value in Python (.{name}())')
            return originals[name](self, *args, **kwargs)
        return method
    for name in HOST_READS:
        setattr(torch.Tensor, name, refusing(name))
    try:
        yield
    finally:  # as before: torch.Tensor's own methods back, TensorBase's inherited again
        for name in HOST_READS:
            if name in own:
                setattr(torch.Tensor, name, own[name])
            else:
                delattr(torch.Tensor, name)


def changes_inputs(graph):
    """Whether an operation writes into an input (a parameter, a buffer, a batch tensor), a tensor
    the graph holds, or a view of one: a replay would apply the change again each time it is
    recorded or checked. Arguments are matched by the schema (positional, keyword such as out=,
    and tensor lists)."""
    aliases = {node for node in graph.nodes if node.op in ('placeholder', 'get_attr')}  # get_attr: a tensor
    # the losses read that is not an input (a plain attribute), held by the graph as it is

    def touches(value):
        values = value if isinstance(value, (list, tuple)) else (value,)
        return any(isinstance(item, torch.fx.Node) and item in aliases for item in values)
    for node in graph.nodes:
        if node.target is operator.getitem and node.args[0] in aliases:  # one of a list of views
            aliases.add(node)
        if node.op != 'call_function' or not isinstance(node.target, torch._ops.OpOverload):
            continue
        schema = node.target._schema
        bound = [(argument, node.args[index] if index < len(node.args) else node.kwargs.get(argument.name))
                 for index, argument in enumerate(schema.arguments)]
        if any(argument.alias_info is not None and argument.alias_info.is_write and touches(value)
               for argument, value in bound):
            return True
        returned = schema.returns[0].alias_info if schema.returns else None
        # a view of an input, an input written and returned, or a list of views (unbind, split:
        # their schema puts the alias on the list's elements, so the list's own set is empty)
        if returned is not None and any(argument.alias_info is not None and touches(value) and
                                        (argument.alias_info.before_set & returned.before_set or
                                         not returned.before_set)
                                        for argument, value in bound):
            aliases.add(node)
    return False


class Replay:
    """One recorded graph: the loss functions `names` on one batch layout. The recording is an
    eager update (make_fx runs the losses on the real tensors), whose result is the first update's:
    `recorded`, with the random state as that eager update leaves it."""

    def __init__(self, agent, names, batch):
        self.agent, self.names, self.keys, self.label = agent, names, sorted(batch), ', '.join(names)
        modules = {id(m): m for m in agent.checkpoint_state().values() if isinstance(m, torch.nn.Module)}
        tensors = {id(t): t for m in modules.values() for t in (*m.parameters(), *m.buffers())}
        self.state = list(tensors.values())  # every tensor the losses may read: inputs, not constants
        before, eager = torch.get_rng_state(), {}

        def losses_and_gradients(*inputs):
            optimizers, grads, info = self.eager(dict(zip(self.keys, inputs[len(self.state):])))
            eager.update(optimizers=optimizers, grads=grads, info=info)
            return (*grads, *info.values())
        label, inputs = self.label, [*self.state, *self.inputs(batch)]
        with torch.no_grad():  # a recording that stops part way leaves what it wrote and drew: put back
            saved = [tensor.clone() for tensor in inputs]
        try:
            with host_reads_refused():
                self.graph = make_fx(losses_and_gradients)(*inputs)
        except (NotReplayable, RuntimeError) as error:  # the eager update that follows shows a loss's own errors
            with torch.no_grad():
                torch._foreach_copy_(inputs, saved)
            torch.set_rng_state(before)
            if isinstance(error, NotReplayable):
                raise NotReplayable(f'{label} {error}') from None
            if '_local_scalar_dense' not in str(error):
                raise NotReplayable(f'{label} could not be recorded ({str(error).splitlines()[0]})') from None
            raise NotReplayable(f'{label} read a tensor\'s value in Python (.item() or a branch on a tensor)') from None
        self.optimizers, self.info_keys = eager['optimizers'], list(eager['info'])
        self.params = parameters(self.optimizers)
        self.recorded, self.after = (list(eager['grads']), eager['info']), torch.get_rng_state()
        self.relayout = [grad is not None and grad.stride() != param.stride()
                         for grad, param in zip(self.recorded[0], self.params)]
        self.replays = 0
        try:
            if changes_inputs(self.graph.graph):
                raise NotReplayable(f'{label} change a parameter, buffer or batch tensor in place')
            torch.set_rng_state(before)  # the check replay draws what the recording drew
            try:
                self.simplify()
                grads, info = self.replay(batch)
            except Exception as error:  # a graph that cannot run is one the agent does without
                raise NotReplayable(f'the replay of {label} failed ({str(error).splitlines()[0]})') from None
            if not all_same([*grads, *info.values()], [*self.recorded[0], *self.recorded[1].values()]):
                raise NotReplayable(f'the replay of {label} differs from its recording')
        except NotReplayable as error:
            error.update = self.first_update()  # the recording stands as this update, as eager runs it
            raise
        for node in self.graph.graph.nodes:  # make_fx keeps every intermediate tensor of the recording
            node.meta.clear()

    def inputs(self, batch):
        return [batch[key] for key in self.keys]

    def eager(self, batch):
        """(optimisers, gradients, info): the losses' gradients by autograd, without touching .grad."""
        updates, info = self.agent.run_losses(self.names, batch)
        optimizers = [optimizer for _, optimizer in updates]
        params = parameters(optimizers)
        grads = torch.autograd.grad([loss for loss, _ in updates], params, allow_unused=True) if params else ()
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
                    getattr(torch._C.TensorBase, name, None) or node.target
        graph._codegen = torch.fx.graph.CodeGen()  # positional inputs, a tuple out: no pytree work per call
        self.graph.recompile()
        self.run = self.graph.forward  # the generated function alone (a GraphModule call prints a failure's trace)

    @torch.no_grad()
    def replay(self, batch):
        outputs = self.run(*self.state, *self.inputs(batch))
        return outputs[:len(self.params)], dict(zip(self.info_keys, outputs[len(self.params):]))

    def set_gradients(self, grads):
        """Into .grad, laid out as each parameter, as autograd's accumulation stores them (a conv
        kernel's gradient comes channels-last from channels-last frames; the fused Adam step reads
        gradient and parameter alike)."""
        for param, grad, relayout in zip(self.params, grads, self.relayout):
            param.grad = torch.empty_like(param).copy_(grad) if relayout else grad
        return self.optimizers

    def first_update(self):
        """(optimisers, info) of the recorded update, its gradients in .grad."""
        torch.set_rng_state(self.after)
        grads, info = self.recorded
        self.recorded = None
        return self.set_gradients(grads), info

    def __call__(self, batch):
        """(optimisers, info) with the gradients in the parameters' .grad. Raises NotReplayable,
        with the random state as it was, when the replay fails (a batch the recorded views do not
        fit) or a comparison with the eager losses finds a difference."""
        self.replays += 1
        before = torch.get_rng_state()  # ~1 us
        try:
            grads, info = self.replay(batch)
        except Exception as error:
            torch.set_rng_state(before)
            raise NotReplayable(f'a replay of {self.label} failed ({str(error).splitlines()[0]})') from None
        if self.replays in EARLY_CHECKS or self.replays % CHECK_EVERY == 0:
            after = torch.get_rng_state()
            torch.set_rng_state(before)
            _, eager_grads, eager_info = self.eager(batch)
            if not all_same([*grads, *info.values()], [*eager_grads, *eager_info.values()]):
                torch.set_rng_state(before)
                raise NotReplayable(f'a replay of {self.label} differed from the eager losses at '
                                    f'replay {self.replays} (a loss reads a Python value that changed?)')
            torch.set_rng_state(after)
        return self.set_gradients(grads), info


class TracedLosses:
    """The agent's loss functions and their gradients, replayed: `traced(names, batch)` does what
    `BaseAgent.branch_gradients(names, batch)` does. A graph per (names, batch layout)."""

    def __init__(self, agent):
        self.agent, self.replays, self.failed = agent, {}, None

    def __getstate__(self):
        """A copy (deepcopy, pickle) records afresh: the graphs hold the original's tensors and
        cannot be pickled."""
        return {**self.__dict__, 'replays': {}}

    def __call__(self, names, batch):
        if not names:  # an update with no losses (DQN's train_pi)
            return [], {}
        key = (names, layout(batch))
        replay = self.replays.get(key)
        if replay is None:
            with RECORDING:
                try:
                    replay = self.replays[key] = Replay(self.agent, names, batch)
                except NotReplayable as error:  # with the recorded update, unless it stopped part way
                    return self.give_up(str(error), names, batch, getattr(error, 'update', None))
            return replay.first_update()
        try:
            return replay(batch)
        except NotReplayable as error:
            return self.give_up(str(error), names, batch)

    def give_up(self, reason, names, batch, update=None):
        """Eager updates from here on (this one too, unless the recording already made it); the
        agent reports why once (its `notices`)."""
        if self.failed is None:
            self.failed = reason
            self.agent.notices.append(f'warning: {reason}; the update runs eagerly from here '
                                      '(--traced_update False runs eagerly from the start)')
        return update if update is not None else self.agent.eager_gradients(names, batch)
