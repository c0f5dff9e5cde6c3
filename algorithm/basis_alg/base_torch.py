"""Machinery shared by the PyTorch agents (twin of base.py): device, inputs, updates, checkpoints.

A subclass builds its networks in `create_network`, its optimisers in `create_optimizers`, and
describes one training step as two lists of (loss, optimiser) pairs: `pi_losses` and
`q_losses`. `train` takes both, `train_pi` / `train_q` one each (TD3 splits them), and
`apply_updates` turns a list into one simultaneous step (docs/algorithms.md section 5).
On the CPU with two or more threads the critic's losses and backward pass run on a second
thread beside the rest (`loss_branches`, `--parallel_losses`), and each branch's losses and
backward pass are recorded once and replayed without autograd (`utils/torch_trace.py`,
`--traced_update`); the step is the same.
"""
import functools
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

from algorithm.checkpoint import (CheckpointError, atomic_write, check_meta, checkpoint_meta, first_line,
                                  load_torch_payload)
from utils.torch_trace import TracedLosses
from utils.torch_utils import AdamTF, Normalizer, hard_update, polyak_update, step_optimizers


def resolve_device(args):
    """`--cuda` unset means use the GPU when torch sees one; `--cuda=True` without one is an error."""
    cuda = getattr(args, 'cuda', None)
    if cuda is None:
        cuda = torch.cuda.is_available()
    elif cuda and not torch.cuda.is_available():
        raise ValueError('--cuda=True was given but torch sees no CUDA device; run with --cuda=False')
    if cuda:
        full_fp32_on_cuda()
    return torch.device('cuda' if cuda else 'cpu')


def full_fp32_on_cuda():
    """Full float32 on CUDA, as the TF reference computes: torch's default runs cuDNN convolutions
    (not matmuls) in TF32 on Ampere and later GPUs (inputs rounded to 10 mantissa bits, ~5e-4
    relative), which the parity tolerances of 1e-5 do not allow. Reduced precision stays the
    opt-in --amp. Set through the flag every torch version and torch's own code read (once a
    per-operator `fp32_precision` is set, reading this flag raises). Inductor (--compile) suggests
    TF32 matmuls whenever it compiles on such a GPU: declined on purpose, so not printed."""
    torch.backends.cudnn.allow_tf32 = False
    warnings.filterwarnings('ignore', message='TensorFloat32 tensor cores', category=UserWarning)


def make_adam(params, lr, device, eps=1e-8):
    """Adam with the TF reference's epsilon rule and fused kernels (CPU and CUDA): one pass over
    each tensor, 3-4x faster on the CPU than foreach, which allocates temporaries."""
    return AdamTF(params, lr=lr, eps=eps, fused=True)


@functools.cache
def branch_thread(threads):
    """The second thread of parallel updates, with `threads` intra-op threads of its own (torch's
    thread count is per thread: a new thread would otherwise use every core)."""
    return ThreadPoolExecutor(1, thread_name_prefix='critic-branch', initializer=torch.set_num_threads,
                              initargs=(threads,))


class BaseAgent:
    train_info = ()
    step_info = ()
    checkpoint_names = ()  # attributes (modules, optimisers) a checkpoint holds
    hard_target_update = False  # DQN copies its target; actor-critics use polyak averaging
    # Standard-normal noise each loss function draws, by name, in the order it draws it: drawn
    # before the losses run, so parallel branches use the random stream as one thread would.
    loss_noise = {}
    update_kinds = ('train',)  # the updates the learner makes (TD3: train_q and train_pi)

    def __init__(self, args):
        self.args = args
        self.device = resolve_device(args)
        self.normalizer = Normalizer(args.obs_dims).to(self.device) if args.obs_normalization else None
        self.target_pairs = []  # (target module, online module), filled by create_network
        self.create_network()
        # The tensors of the target update, collected once (the modules never change; loading a
        # checkpoint copies into them): walking the modules every update cost ~30 us.
        self.target_params = [p for target, _ in self.target_pairs for p in target.parameters()]
        self.source_params = [p for _, source in self.target_pairs for p in source.parameters()]
        self.create_optimizers()
        names = {name for kind in ('train', 'train_pi', 'train_q') for branch in self.loss_branches(kind)
                 for name in branch}
        self.loss_functions = {name: self.accelerate(getattr(self, name)) for name in sorted(names)}
        self.notices = []  # lines for the run's log (the learner prints them)
        self.traced_losses = TracedLosses(self) if self.traces_updates() else None
        self.set_threads(getattr(args, 'threads', 0) or torch.get_num_threads())  # 0: torch's default

    def set_threads(self, threads):
        """All `threads` for torch's intra-op work; or, when the learner's updates have two branches
        (on a CPU, with --parallel_losses and without --compile, whose code runs on one thread),
        half of them for each branch: the caller's and the second thread's. Kept for every update:
        switching an OpenMP team's size between updates leaves its threads spinning."""
        branched = any(len(self.loss_branches(kind)) > 1 for kind in self.update_kinds)
        self.branch_threads = threads // 2 if (branched and threads >= 2 and self.device.type == 'cpu' and
                                               getattr(self.args, 'parallel_losses', False) and
                                               not getattr(self.args, 'compile', False)) else 0
        self.threads = self.branch_threads or threads
        torch.set_num_threads(self.threads)

    def traces_updates(self):
        """--traced_update applies on a CPU device to the plain fp32 update: --compile and --amp
        change the operations, and on CUDA the eager update is bound by kernel launches, which a
        replay from Python does not remove (--compile's CUDA graphs do)."""
        args = self.args
        return (getattr(args, 'traced_update', False) and self.device.type == 'cpu' and
                not getattr(args, 'compile', False) and not getattr(args, 'amp', False))

    def create_network(self):
        raise NotImplementedError

    def create_optimizers(self):
        raise NotImplementedError

    # ---- inputs ---------------------------------------------------------------------------------
    def to_tensors(self, batch):
        """One conversion per batch key (a no-op for keys that already are tensors). uint8 frame
        stacks also become contiguous here, once per batch, however many losses read them: the
        replay buffer samples them channels-first in memory, and on channels-last input the conv
        stack's forward + backward runs ~1.25x faster on these CPUs, its first layer ~1.7x
        (bench/RESULTS.md, Atari notes). The copy is made on the bytes (1.5x faster than
        converting and transposing at once) and on the device."""
        tensors = {key: torch.as_tensor(value, device=self.device) for key, value in batch.items()}
        return {key: value.contiguous() if value.dtype == torch.uint8 else value for key, value in tensors.items()}

    def preprocess_obs(self, obs):
        """uint8 frames are scaled to [0, 1]; vector observations go through the normaliser."""
        if obs.dtype == torch.uint8:
            return obs.float().div_(255.0)  # in place: one pass less over the frames
        return self.normalizer.normalize(obs) if self.normalizer is not None else obs

    # ---- acting ---------------------------------------------------------------------------------
    def step(self, obs, explore=False, test_info=False, noise=None):
        """Act on one unbatched observation; `noise` (standard normal) replaces the agent's own."""
        obs = self.to_tensors({'obs': np.asarray(obs)[None]})['obs']
        if noise is not None:
            noise = torch.as_tensor(np.asarray(noise, dtype=np.float32)[None], device=self.device)
        with torch.no_grad():
            action, info = self.act(self.preprocess_obs(obs), explore, noise, test_info)
        action = action[0].cpu().numpy()
        if action.ndim == 0:  # discrete: a plain int, as the env expects
            action = int(action)
        if not test_info:
            return action
        return action, {key: value[0].cpu().numpy() for key, value in info.items()}

    def act(self, obs, explore, noise, with_info):
        """Batched actions (and step info when asked) for preprocessed observations."""
        raise NotImplementedError

    # ---- training -------------------------------------------------------------------------------
    def pi_losses(self, batch):
        return [], {}

    def q_losses(self, batch):
        return [], {}

    def loss_branches(self, kind):
        """The loss functions (names) of update `kind` in branches that share nothing before the
        optimiser step; in order, one after the other, they are the serial update."""
        return {'train': (('pi_losses',), ('q_losses',)), 'train_pi': (('pi_losses',),),
                'train_q': (('q_losses',),)}[kind]

    @staticmethod
    def gradients(updates):
        """Every (loss, optimiser) pair's gradients from the current parameters, in one backward pass.

        Each loss reaches only its own optimiser's parameters (a policy loss reads the critics
        through detached weights, `input_gradient_mlp`), so one backward pass over all losses
        gives every optimiser exactly its own gradients.
        """
        for _, optimizer in updates:  # zero_grad(set_to_none=True) without its per-call bookkeeping (~10 us)
            for group in optimizer.param_groups:
                for param in group['params']:
                    param.grad = None
        if updates:
            torch.autograd.backward([loss for loss, _ in updates])

    def apply_updates(self, updates):
        """One simultaneous step: every gradient from the current parameters, then every update."""
        self.gradients(updates)
        step_optimizers([optimizer for _, optimizer in updates])

    def run_losses(self, names, batch):
        updates, info = [], {}
        for name in names:
            part_updates, part_info = self.loss_functions[name](batch)
            updates += part_updates
            info.update(part_info)
        return updates, info

    def branch_gradients(self, names, batch):
        """(optimisers, info) of the loss functions `names`, their gradients in the parameters'
        .grad: replayed (utils/torch_trace.py) or by autograd."""
        if self.traced_losses is not None and self.traced_losses.failed is None:
            return self.traced_losses(tuple(names), batch)
        return self.eager_gradients(names, batch)

    def eager_gradients(self, names, batch):
        updates, info = self.run_losses(names, batch)
        self.gradients(updates)
        return [optimizer for _, optimizer in updates], info

    def accelerate(self, losses):
        """`losses` under the opt-in --amp (bfloat16 autocast) and --compile (torch.compile; with
        CUDA graphs on CUDA). Only the losses are compiled: backward runs through the compiled
        graph, and the Adam step stays eager, so its changing step sizes never recompile. With
        CUDA graphs, one update is one graph step (`update` marks it), not one loss function: an
        update's losses all run before its one backward pass reads their saved tensors."""
        args, device_type = self.args, self.device.type
        accelerated = losses
        if getattr(args, 'amp', False):
            def accelerated(batch):
                with torch.autocast(device_type, dtype=torch.bfloat16):
                    return losses(batch)
        if getattr(args, 'compile', False):
            return torch.compile(accelerated, dynamic=False, mode='reduce-overhead' if device_type == 'cuda' else None)
        return accelerated

    def uses_cuda_graphs(self):
        return self.device.type == 'cuda' and getattr(self.args, 'compile', False)

    def draw_noise(self, names, batch):
        """The noise `names` draw (`loss_noise`), drawn now and in their order, as batch keys."""
        shape = batch['acts'].shape
        return {key: torch.randn(shape, device=self.device)
                for name in names for key in self.loss_noise.get(name, ()) if key not in batch}

    def update(self, kind, batch):
        """One update: serial, or with the last branch on the second thread (same arithmetic,
        same gradients: the branches touch disjoint parameters), then every optimiser step."""
        if self.uses_cuda_graphs():  # one update is one CUDA-graph step: the last update's outputs have been read
            torch.compiler.cudagraph_mark_step_begin()
        batch = self.to_tensors(batch)
        branches = self.loss_branches(kind)
        names = [name for branch in branches for name in branch]  # the serial order
        batch.update(self.draw_noise(names, batch))
        if self.device.type == 'cpu' and torch.get_num_threads() != self.threads:  # changed by someone else
            torch.set_num_threads(self.threads)
        if not self.branch_threads or len(branches) < 2:
            if self.traced_losses is None:  # the eager reference form (bench/levers.py varies it)
                updates, info = self.run_losses(names, batch)
                self.apply_updates(updates)
            else:
                optimizers, info = self.branch_gradients(names, batch)
                step_optimizers(optimizers)
        else:
            last = branch_thread(self.branch_threads).submit(self.branch_gradients, branches[-1], batch)
            optimizers, info = self.branch_gradients([name for branch in branches[:-1] for name in branch], batch)
            last_optimizers, last_info = last.result()
            step_optimizers(optimizers + last_optimizers)
            info = {**info, **last_info}
        if self.uses_cuda_graphs():  # the next graph step overwrites this one's outputs (TD3: train_pi after train_q)
            info = {key: value.clone() for key, value in info.items()}
        return info

    def train(self, batch):
        return self.update('train', batch)

    def train_pi(self, batch):
        return self.update('train_pi', batch)

    def train_q(self, batch):
        return self.update('train_q', batch)

    def target_update(self):
        if self.hard_target_update:
            hard_update(self.target_params, self.source_params)
        else:
            polyak_update(self.target_params, self.source_params, self.args.polyak)

    def normalizer_update(self, batch):
        if self.normalizer is not None:
            batch = self.to_tensors({key: batch[key] for key in ('obs', 'obs_next')})
            self.normalizer.update(torch.cat([batch['obs'], batch['obs_next']]))

    # ---- checkpoints ----------------------------------------------------------------------------
    def checkpoint_state(self):
        """Everything with a state_dict that a checkpoint must hold, by name."""
        state = {name: getattr(self, name) for name in self.checkpoint_names}
        if self.normalizer is not None:
            state['normalizer'] = self.normalizer
        return state

    def save_model(self, path):
        payload = {'meta': checkpoint_meta(self.args, 'torch'),
                   'state': {name: obj.state_dict() for name, obj in self.checkpoint_state().items()}}
        with atomic_write(path) as tmp_path:
            torch.save(payload, tmp_path)

    def load_model(self, path):
        payload = load_torch_payload(path, self.device)
        check_meta(payload['meta'], checkpoint_meta(self.args, 'torch'), path)
        for name, obj in self.checkpoint_state().items():
            if name not in payload['state']:
                raise CheckpointError(f'{path} lacks "{name}"; it was saved by a different agent configuration')
            try:
                obj.load_state_dict(payload['state'][name])
            except (RuntimeError, ValueError, KeyError) as error:
                raise CheckpointError(f'{path}: "{name}" does not fit this agent ({first_line(error)}); '
                                      'pass the flags it was trained with') from None
