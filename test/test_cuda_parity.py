"""The PyTorch port on CUDA computes what it computes on the CPU (project issue 10).

test_parity.py holds the port on the CPU to the TF reference; this suite holds the port on a GPU to
the port on the CPU, with the same configurations, batches, tolerances and reports, so the
agreement carries over to CUDA without TensorFlow on the GPU machine. For every configuration a
CPU agent takes the warm-up updates alone, a CUDA agent gets its whole state (networks, targets,
normaliser, optimiser moments and step counts), and both must then agree on every step(), every
train_info value and every state tensor after each of 10 updates. Runs with
`pytest --torch-device cuda` on a machine with a GPU; skipped otherwise (CI has none).
"""
import copy

import numpy as np
import pytest

torch = pytest.importorskip('torch')

from algorithm import create_agent  # noqa: E402
from arguments import get_args  # noqa: E402
from parity_cases import (CASES, LOSS_RTOL, UPDATES, WARMUP, check_steps, first_divergence, make_batch,  # noqa: E402
                          run_update, value_divergence, well_conditioned_batch)

LABELS = ('CPU', 'CUDA')


@pytest.fixture(autouse=True)
def on_cuda_only(torch_device):
    if torch_device != 'cuda':
        pytest.skip('compares CUDA with the CPU: run pytest --torch-device cuda on a machine with a GPU')


def make_torch_agent(name, device):
    """The CPU reference runs one thread, where each backend repeats its arithmetic bit for bit (a
    GPU machine's many cores would split its products, and DDPG/SAC updates, across threads)."""
    argv, obs_dims, acts_dims = CASES[name]
    threads = ['--threads', '1'] if device == 'cpu' else []
    args = get_args(argv + ['--use_pytorch', 'True', '--cuda', str(device == 'cuda'), *threads])
    args.obs_dims, args.acts_dims = list(obs_dims), list(acts_dims)
    return create_agent(args)


def make_pair(name):
    """A CPU agent after WARMUP updates of its own (see test_parity.make_pair for why), and a CUDA
    agent with its whole state."""
    cpu, cuda = make_torch_agent(name, 'cpu'), make_torch_agent(name, 'cuda')
    for update in range(1, WARMUP + 1):
        run_update(cpu, make_batch(cpu.args, seed=10_000 + update), update)
    for key, obj in cpu.checkpoint_state().items():
        getattr(cuda, key).load_state_dict(copy.deepcopy(obj.state_dict()))
    return cpu, cuda


def state_rows(cpu, cuda):
    """[(name, max abs difference, that relative to the CPU tensor's largest |value|)] for every
    parameter, buffer and optimiser slot, named 'checkpoint entry/key' ('normalizer/sum', ...)."""
    def tensors(agent):
        out = {}
        for key, obj in agent.checkpoint_state().items():
            state = obj.state_dict()
            if isinstance(obj, torch.optim.Optimizer):
                state = {f'{index}.{slot}': value for index, slots in state['state'].items()
                         for slot, value in slots.items()}
            out.update({f'{key}/{name}': value.detach().cpu().double().numpy() for name, value in state.items()})
        return out

    want, got = tensors(cpu), tensors(cuda)
    assert want.keys() == got.keys()
    rows = []
    for name, value in want.items():
        largest = float(np.abs(value - got[name]).max(initial=0.0))
        rows.append((name, largest, largest / max(float(np.abs(value).max(initial=0.0)), np.finfo(np.float32).tiny)))
    return rows


@pytest.mark.parametrize('name', list(CASES))
def test_cuda_matches_cpu(name):
    cpu, cuda = make_pair(name)
    assert all(diff == 0.0 for _, diff, _ in state_rows(cpu, cuda)), 'the state was not copied exactly'
    for opt_name in [key for key in cpu.checkpoint_names if key.endswith('optimizer')]:
        want, got = getattr(cpu, opt_name).param_groups, getattr(cuda, opt_name).param_groups
        assert [group.get('tf_step') for group in want] == [group.get('tf_step') for group in got], opt_name
    obs = make_batch(cpu.args, seed=99)['obs'][0]
    check_steps(cpu, cuda, obs, 'before training', LABELS)
    for update in range(1, UPDATES + 1):
        batch = well_conditioned_batch(cpu, update)
        cpu_info, cuda_info = (run_update(agent, batch, update) for agent in (cpu, cuda))
        message = value_divergence(cpu_info, cuda_info, LOSS_RTOL, labels=LABELS)
        assert message is None, f'update {update}: train_info {message}'
        message = first_divergence(state_rows(cpu, cuda))
        assert message is None, f'after update {update}: {message}'
    check_steps(cpu, cuda, obs, f'after {UPDATES} updates', LABELS)
