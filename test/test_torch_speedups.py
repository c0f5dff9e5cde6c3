"""The PyTorch backend's speed-ups keep its numbers (issue 10).

The default update takes one backward pass over all losses (critics read by a policy loss through
detached weights, with gradients for the actions only) and steps every Adam optimiser with fused
kernels; it must give what the plain form gives: one autograd.grad per optimiser over the plain
critics, then each AdamTF.step. The opt-in --amp and --compile are checked against the eager
path, and --compile must not recompile once warm. The checks of numbers take the `torch_device`
fixture: with `pytest --torch-device cuda` they run on a GPU, where the fused Adam kernel is
CUDA's and --compile records CUDA graphs.
"""
import copy
import functools

import numpy as np
import pytest

torch = pytest.importorskip('torch')

from algorithm import create_agent  # noqa: E402
from arguments import get_args  # noqa: E402
from utils.torch_utils import AdamTF, step_optimizers  # noqa: E402

CONTINUOUS = (['--env', 'Hopper-v2'], [11], [3])
DISCRETE = (['--env', 'CartPole-v1'], [4], [2])
CONFIGS = {
    'ddpg': CONTINUOUS[0] + ['--alg', 'ddpg'], 'td3': CONTINUOUS[0] + ['--alg', 'td3'],
    'sac': CONTINUOUS[0] + ['--alg', 'sac'], 'rrd-sac': CONTINUOUS[0] + ['--alg', 'rrd', '--basis_alg', 'sac'],
    'rrd-td3-bc': CONTINUOUS[0] + ['--alg', 'rrd', '--basis_alg', 'td3', '--rrd_bias_correction', 'True'],
    'rrd-dqn': DISCRETE[0] + ['--alg', 'rrd', '--basis_alg', 'dqn'],
}


def make_agent(name, *flags, seed=0, device='cpu'):
    argv = CONFIGS[name]
    obs_dims, acts_dims = (DISCRETE if '--basis_alg' in argv and 'dqn' in argv else CONTINUOUS)[1:]
    args = get_args(argv + ['--use_pytorch', 'True', '--cuda', str(device == 'cuda'), *flags])
    args.obs_dims, args.acts_dims = list(obs_dims), list(acts_dims)
    torch.manual_seed(seed)
    return create_agent(args)


def make_batch(args, seed, b=16, episodes=2, k=4, fed_noise=True):
    rng = np.random.RandomState(seed)

    def obs(*lead):
        return rng.normal(size=list(lead) + list(args.obs_dims)).astype(np.float32)

    def acts(*lead):
        if args.discrete:
            return rng.randint(0, args.acts_dims[0], size=lead).astype(np.int64)
        return rng.uniform(-1, 1, size=list(lead) + list(args.acts_dims)).astype(np.float32)

    batch = {'obs': obs(b), 'obs_next': obs(b), 'acts': acts(b), 'rews': rng.normal(size=(b, 1)).astype(np.float32),
             'done': (rng.uniform(size=(b, 1)) < 0.2).astype(np.float32)}
    if fed_noise and not args.discrete:  # the agents' own noise, fed so that two agents draw the same
        noise_shape = [b] + list(args.acts_dims)
        batch.update({key: np.clip(rng.normal(size=noise_shape), -1.5, 1.5).astype(np.float32)
                      for key in ('pi_noise', 'pi_next_noise', 'target_noise')})
    if args.alg == 'rrd':
        batch.update({'rrd_obs': obs(episodes, k), 'rrd_obs_next': obs(episodes, k), 'rrd_acts': acts(episodes, k),
                      'rrd_rews': rng.normal(size=(episodes, 1)).astype(np.float32),
                      'rrd_var_coef': np.full((episodes, 1), 0.5, np.float32)})
    return batch


def plain_form(agent):
    """Turn `agent` into the plain form: critics read whole (their parameters in the policy loss's
    graph), one autograd.grad per optimiser, then each optimiser's own AdamTF.step; eager."""
    agent.traced_losses = None
    for name in ('q', 'q1', 'q2'):
        critic = getattr(agent, name, None)
        if critic is not None:
            critic.action_value = critic.forward

    def apply_updates(updates):
        grads = [torch.autograd.grad(loss, opt.param_groups[0]['params'], retain_graph=True) for loss, opt in updates]
        for (_, opt), group_grads in zip(updates, grads):
            for param, grad in zip(opt.param_groups[0]['params'], group_grads):
                param.grad = grad
            opt.step()

    agent.apply_updates = apply_updates
    return agent


def state_tensors(agent):
    """Every parameter and optimiser moment, by checkpoint name."""
    out = {}
    for name, obj in agent.checkpoint_state().items():
        if isinstance(obj, torch.optim.Optimizer):
            for index, state in obj.state_dict()['state'].items():
                out.update({f'{name}.{index}.{slot}': value for slot, value in state.items()})
        else:
            out.update({f'{name}.{key}': value for key, value in obj.state_dict().items()})
    return out


def learner_updates(agent, count, seed=0, fed_noise=True):
    """`count` updates as the learner makes them (TD3: train_q, and train_pi every second update)."""
    infos = []
    for update in range(1, count + 1):
        batch = make_batch(agent.args, seed + update, fed_noise=fed_noise)
        if 'td3' in (agent.args.alg, getattr(agent.args, 'basis_alg', None)):
            info = agent.train_q(batch)
            if update % 2 == 0:
                info.update(agent.train_pi(batch))
        else:
            info = agent.train(batch)
        agent.target_update()
        infos.append({key: float(value) for key, value in info.items()})
    return infos


@pytest.mark.parametrize('name', list(CONFIGS))
def test_default_update_equals_plain_form(name, torch_device):
    agent = make_agent(name, device=torch_device)
    plain = plain_form(copy.deepcopy(agent))
    fast_info, plain_info = learner_updates(agent, 4), learner_updates(plain, 4)
    for fast, slow in zip(fast_info, plain_info):
        assert fast == pytest.approx(slow, rel=1e-5, abs=1e-6)
    want, got = state_tensors(plain), state_tensors(agent)
    assert want.keys() == got.keys()
    for key in want:
        torch.testing.assert_close(got[key], want[key], rtol=1e-5, atol=1e-6, msg=key)
    for opt_name in [n for n in agent.checkpoint_names if n.endswith('optimizer')]:
        got_groups, want_groups = getattr(agent, opt_name).param_groups, getattr(plain, opt_name).param_groups
        assert [(g['tf_step'], g['eps']) for g in got_groups] == [(g['tf_step'], g['eps']) for g in want_groups]


def test_policy_loss_leaves_critics_without_gradients():
    """The policy loss reaches the actions through the critic, never the critic's parameters."""
    agent = make_agent('ddpg')
    agent.train_pi(make_batch(agent.args, 1))
    assert all(param.grad is None for param in agent.q.parameters())
    assert all(param.grad is not None for param in agent.pi.parameters())


def test_step_optimizers_equals_adamtf_step(torch_device):
    params = [torch.nn.Parameter(torch.randn(5, 3, device=torch_device)),
              torch.nn.Parameter(torch.randn(3, device=torch_device))]
    twins = [torch.nn.Parameter(p.detach().clone()) for p in params]
    fast, slow = AdamTF(params, lr=1e-2, eps=1.5e-4, fused=True), AdamTF(twins, lr=1e-2, eps=1.5e-4, foreach=True)
    for step in range(5):
        grads = [torch.randn_like(p) for p in params]
        for p, q, g in zip(params, twins, grads):
            p.grad, q.grad = g, g.clone()
        step_optimizers([fast])
        slow.step()
    for p, q in zip(params, twins):
        torch.testing.assert_close(p, q, rtol=1e-6, atol=1e-7)
    fast_state, slow_state = fast.state_dict(), slow.state_dict()
    assert fast_state['param_groups'][0]['tf_step'] == slow_state['param_groups'][0]['tf_step'] == 5
    assert fast_state['param_groups'][0]['eps'] == slow_state['param_groups'][0]['eps']
    for index in fast_state['state']:  # foreach Adam keeps its step counts on the CPU, fused on the device
        for slot in ('step', 'exp_avg', 'exp_avg_sq'):
            torch.testing.assert_close(fast_state['state'][index][slot], slow_state['state'][index][slot],
                                       check_device=False)


@pytest.mark.parametrize('name', ['ddpg', 'sac', 'rrd-sac'])  # the agents whose updates have two branches
def test_parallel_losses_equal_the_serial_update(name):
    """--threads 2 runs the critic branch on a second thread, one intra-op thread per branch: the
    same arithmetic as one thread, so parameters, moments and infos match bit for bit, also when
    the agents draw their own noise (drawn up front in the serial order)."""
    threads = torch.get_num_threads()
    try:
        serial = make_agent(name, '--threads', '1')
        parallel = make_agent(name, '--threads', '2')
        assert (serial.branch_threads, parallel.branch_threads) == (0, 1)
        infos = []
        for agent in (serial, parallel):
            torch.manual_seed(7)
            infos.append(learner_updates(agent, 4, fed_noise=False))
    finally:
        torch.set_num_threads(threads)
    assert infos[0] == infos[1]
    want, got = state_tensors(serial), state_tensors(parallel)
    assert want.keys() == got.keys()
    for key in want:
        assert torch.equal(got[key], want[key]), key


def test_parallel_losses_split_rrd_updates_in_two_branches():
    agent = make_agent('rrd-sac', '--threads', '1')
    assert agent.loss_branches('train') == (('pi_losses', 'reward_losses'), ('critic_losses',))
    assert agent.loss_branches('train_q') == (('q_losses',),)
    assert make_agent('rrd-dqn', '--threads', '1').loss_branches('train') == (('q_losses',),)
    assert make_agent('sac', '--threads', '1').loss_branches('train') == (('pi_losses',), ('q_losses',))


@pytest.mark.parametrize('name', ['td3', 'rrd-td3-bc', 'rrd-dqn'])
def test_agents_without_two_branches_keep_every_thread(name):
    """TD3's critic and policy steps, and DQN's, are one branch each: every thread goes to torch's
    intra-op work, and stays there (an OpenMP team resized between updates keeps spinning)."""
    threads = torch.get_num_threads()
    try:
        agent = make_agent(name, '--threads', '2')
        assert (agent.branch_threads, agent.threads, torch.get_num_threads()) == (0, 2, 2)
        split = make_agent('sac', '--threads', '2')
        assert (split.branch_threads, split.threads, torch.get_num_threads()) == (1, 1, 1)
        agent.train_q(make_batch(agent.args, 0))  # each agent's update puts its own setting back
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(threads)


@pytest.mark.filterwarnings('ignore:`torch.jit.script_method` is deprecated')  # torch.compile's own imports
@pytest.mark.parametrize('flags', [('--parallel_losses', 'False'), ('--compile', 'True'), ('--cuda', 'False')])
def test_parallel_losses_off(flags):
    """Off with --parallel_losses False, with --compile (compiled code runs on one thread), and with one thread."""
    threads = torch.get_num_threads()
    try:
        agent = make_agent('sac', '--threads', '2' if flags[0] != '--cuda' else '1', *flags)
        assert agent.branch_threads == 0
    finally:
        torch.set_num_threads(threads)


def test_threads_flag_sets_both_backends():
    torch_threads = torch.get_num_threads()
    try:
        make_agent('sac', '--threads', '1')
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(torch_threads)
    pytest.importorskip('tensorflow')
    tf_args = get_args(CONFIGS['sac'] + ['--use_pytorch', 'False', '--threads', '1'])
    tf_args.obs_dims, tf_args.acts_dims = CONTINUOUS[1:]
    config = create_agent(tf_args).sess._config
    assert (config.intra_op_parallelism_threads, config.inter_op_parallelism_threads) == (1, 1)


def test_negative_threads_is_refused(capsys):
    with pytest.raises(SystemExit) as exit_info:
        get_args(CONFIGS['sac'] + ['--threads', '-1'])
    assert exit_info.value.code == 2
    assert '--threads' in capsys.readouterr().err


def test_amp_stays_close_to_eager(torch_device):
    """bfloat16 matmuls keep ~3 significant digits: losses agree to a few percent after updates."""
    eager = make_agent('rrd-sac', device=torch_device)
    amp = copy.deepcopy(eager)
    amp.args = copy.copy(eager.args)
    amp.args.amp = True
    amp.loss_functions = {name: amp.accelerate(getattr(amp, name)) for name in amp.loss_functions}
    for want, got in zip(learner_updates(eager, 3), learner_updates(amp, 3)):
        assert got == pytest.approx(want, rel=5e-2, abs=5e-2)
    assert all(torch.isfinite(p).all() for p in amp.pi.parameters())


def compiled_copy(agent):
    compiled = copy.deepcopy(agent)
    compiled.args = copy.copy(agent.args)
    compiled.args.compile = True
    compiled.loss_functions = {name: compiled.accelerate(getattr(compiled, name)) for name in compiled.loss_functions}
    return compiled


def check_compiled(name, device, warmup=2, updates=3):
    """Compiled losses match eager ones, and a warm compiled agent never recompiles (the Adam step
    counts and epsilons change every update, outside the compiled graph)."""
    import torch._dynamo
    torch._dynamo.reset()
    eager = make_agent(name, device=device)
    compiled = compiled_copy(eager)
    def close_to(infos):  # per update: pytest.approx takes a dict of numbers, not a list of them
        return [pytest.approx(info, rel=1e-4, abs=1e-5) for info in infos]

    assert learner_updates(compiled, warmup) == close_to(learner_updates(eager, warmup))
    with torch._dynamo.config.patch(error_on_recompile=True):
        got = learner_updates(compiled, updates, seed=100)
    assert got == close_to(learner_updates(eager, updates, seed=100))


@pytest.mark.parametrize('name', ['sac', 'rrd-td3-bc'])
def test_compile_matches_eager_without_recompiling(name, torch_device, monkeypatch):
    """Traced by dynamo as with --compile, lowered by a quick backend (inductor's code generation
    takes minutes here; see the slow test below): aot_eager, or on CUDA the CUDA-graph recording
    that --compile's mode adds there."""
    backend = 'cudagraphs' if torch_device == 'cuda' else 'aot_eager'
    monkeypatch.setattr(torch, 'compile', functools.partial(quick_compile, torch.compile, backend))
    check_compiled(name, torch_device)


def quick_compile(compile, backend, model, dynamic=None, mode=None):
    """torch.compile with `backend` in place of inductor (whose `mode` the other backends lack)."""
    return compile(model, dynamic=dynamic, backend=backend)


def test_one_cuda_graph_step_per_update(monkeypatch):
    """With CUDA graphs an update is one graph step, however many loss functions it runs (SAC: the
    policy's and the critic's, then one backward pass over both); TD3's critic and policy updates
    are one step each. Counted on the CPU, where only the marking is checked."""
    marks = []
    monkeypatch.setattr(torch.compiler, 'cudagraph_mark_step_begin', lambda: marks.append(1))
    for name, updates, steps in (('sac', 3, 3), ('td3', 4, 6)):  # TD3: train_q each update, train_pi every 2nd
        agent = make_agent(name)
        assert not agent.uses_cuda_graphs()
        agent.uses_cuda_graphs = lambda: True
        marks.clear()
        learner_updates(agent, updates)
        assert len(marks) == steps, name


def test_infos_outlive_the_next_cuda_graph_step(monkeypatch):
    """A CUDA-graph step's outputs are overwritten by the next step; the learner holds TD3's critic
    info while the policy update runs (torch raised there on a GPU), so with CUDA graphs an update
    returns copies of its loss functions' infos."""
    monkeypatch.setattr(torch.compiler, 'cudagraph_mark_step_begin', lambda: None)
    agent = make_agent('td3', '--traced_update', 'False')  # what CUDA runs: the losses called at each update
    agent.uses_cuda_graphs = lambda: True
    produced = []

    def recording(losses):
        def run(batch):
            updates, info = losses(batch)
            produced.extend(info.values())
            return updates, info
        return run
    agent.loss_functions = {name: recording(losses) for name, losses in agent.loss_functions.items()}
    info = agent.train_q(make_batch(agent.args, 1))
    assert info and len(produced) == len(info)
    for value, output in zip(info.values(), produced):
        assert value.data_ptr() != output.data_ptr() and torch.equal(value, output)


@pytest.mark.slow
@pytest.mark.filterwarnings('ignore:`torch.jit.script_method` is deprecated')  # inductor's own imports
def test_compile_with_inductor_matches_eager(torch_device):
    check_compiled('rrd-sac', torch_device)


def test_frames_reach_the_convolutions_channels_last():
    """The buffer's frame stacks are channels-first in memory (a channels-last view of the
    gather); the agent's batch conversion makes them contiguous channels-last, the layout the CPU
    convolutions are fast on, and scaling keeps it, with the values of a plain conversion."""
    args = get_args(['--env', 'Pong', '--alg', 'dqn', '--use_pytorch', 'True', '--cuda', 'False'])
    args.obs_dims, args.acts_dims = [84, 84, 4], [6]
    agent = create_agent(args)
    frames = np.random.RandomState(0).randint(0, 256, (2, 4, 84, 84), dtype=np.uint8)
    stacks = np.moveaxis(frames, 1, -1)  # as EpisodeStorage samples them
    assert not stacks.flags['C_CONTIGUOUS']
    scaled = agent.preprocess_obs(agent.to_tensors({'obs': stacks})['obs'])
    assert scaled.dtype == torch.float32 and scaled.is_contiguous()
    assert scaled.permute(0, 3, 1, 2).is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(scaled, torch.as_tensor(stacks).float() / 255.0)
