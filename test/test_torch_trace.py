"""The traced update (--traced_update, utils/torch_trace.py) is the eager update, bit for bit.

A replay runs the operations autograd ran, so every loss, parameter and Adam moment must equal
the eager agent's exactly, for every agent, with one thread and with the critic's branch on a
second thread. Where a replay cannot stand in for the losses (a loss reads a tensor's value in
Python, or reads a Python value that changes), the agent says so once and runs eagerly.
"""
import copy

import numpy as np
import pytest

torch = pytest.importorskip('torch')

from test_torch_speedups import CONFIGS, learner_updates, make_agent, make_batch, state_tensors  # noqa: E402
from utils import torch_trace  # noqa: E402


def traced_and_eager(name, threads='1'):
    """The agent `name` traced (with `threads`) and eager (one thread), from the same weights."""
    return [make_agent(name, '--threads', threads), make_agent(name, '--threads', '1', '--traced_update', 'False')]


def assert_same_agents(traced, eager):
    want, got = state_tensors(eager), state_tensors(traced)
    assert want.keys() == got.keys()
    for key in want:
        assert torch.equal(got[key], want[key]), key


def assert_same_training(traced, eager, updates, seed, fed_noise=True):
    """The learner's updates from the same random state: equal infos, then equal agents."""
    infos = []
    for agent in (traced, eager):
        torch.manual_seed(seed)
        infos.append(learner_updates(agent, updates, fed_noise=fed_noise))
    assert infos[0] == infos[1]
    assert_same_agents(traced, eager)


@pytest.fixture
def threads():
    """Restores torch's thread count, which the agents set."""
    count = torch.get_num_threads()
    yield
    torch.set_num_threads(count)


@pytest.mark.parametrize('fed_noise', [True, False], ids=['fed-noise', 'own-noise'])
@pytest.mark.parametrize('name', list(CONFIGS))
def test_traced_update_equals_eager_update(name, fed_noise, threads):
    traced, eager = traced_and_eager(name)
    assert traced.traced_losses is not None and eager.traced_losses is None
    assert_same_training(traced, eager, 5, seed=3, fed_noise=fed_noise)
    assert traced.notices == [] and traced.traced_losses.failed is None
    recorded = {names for names, _ in traced.traced_losses.replays}
    assert recorded == {tuple(name for branch in traced.loss_branches(kind) for name in branch)
                        for kind in traced.update_kinds}


@pytest.mark.parametrize('name', ['ddpg', 'sac', 'rrd-sac'])
def test_traced_branches_on_two_threads_equal_eager(name, threads):
    """Each branch is recorded and replayed on its own thread."""
    traced, eager = traced_and_eager(name, threads='2')
    assert traced.branch_threads == 1
    assert_same_training(traced, eager, 4, seed=5, fed_noise=False)
    assert {names for names, _ in traced.traced_losses.replays} == set(traced.loss_branches('train'))


@pytest.mark.parametrize('alg', ['dqn', 'rrd'])
def test_image_agents_traced_equal_eager(alg, threads):
    """Atari DQN and RRD-DQN on frame stacks laid out as the replay buffer samples them: the conv
    kernels' gradients come channels-last and are stored laid out as their kernels, as autograd
    stores them (the fused Adam step reads them so)."""
    from algorithm import create_agent
    from arguments import get_args
    agents = []
    for flags in ([], ['--traced_update', 'False']):
        args = get_args(['--env', 'Pong', '--alg', alg, '--use_pytorch', 'True', '--cuda', 'False', '--threads', '1',
                         *flags])
        args.obs_dims, args.acts_dims, args.discrete = [84, 84, 4], [6], True
        torch.manual_seed(0)
        agents.append(create_agent(args))
    rng = np.random.RandomState(0)

    def frames(*lead):  # channels-first in memory, viewed channels-last
        return np.moveaxis(rng.randint(0, 256, (*lead, 4, 84, 84)).astype(np.uint8), -3, -1)
    for _ in range(3):
        batch = {'obs': frames(4), 'obs_next': frames(4), 'acts': rng.randint(0, 6, 4),
                 'rews': rng.normal(size=(4, 1)).astype(np.float32), 'done': np.zeros((4, 1), np.float32)}
        if alg == 'rrd':
            batch.update(rrd_obs=frames(2, 3), rrd_obs_next=frames(2, 3), rrd_acts=rng.randint(0, 6, (2, 3)),
                         rrd_rews=rng.normal(size=(2, 1)).astype(np.float32))
        infos = [agent.train(batch) for agent in agents]
        assert all(torch.equal(infos[0][key], infos[1][key]) for key in infos[1])
    assert_same_agents(*agents)


def test_new_batch_layout_records_again(threads):
    traced, eager = traced_and_eager('sac')
    for agent in (traced, eager):
        for size in (16, 8, 16):
            agent.train(make_batch(agent.args, size, b=size))
    assert len(traced.traced_losses.replays) == 2
    assert_same_agents(traced, eager)


def test_replay_reads_the_parameters_a_checkpoint_loads(tmp_path, threads):
    """The parameters are the graph's inputs, not constants: loading a checkpoint into an agent
    that has recorded its update changes what the replay computes."""
    source = make_agent('rrd-sac', '--threads', '1', seed=1)
    learner_updates(source, 3)
    source.save_model(str(tmp_path / 'agent.pt'))
    traced, eager = traced_and_eager('rrd-sac')
    learner_updates(traced, 1)
    for agent in (traced, eager):
        agent.load_model(str(tmp_path / 'agent.pt'))
    infos = [learner_updates(agent, 3, seed=10) for agent in (traced, eager)]
    assert infos[0] == infos[1]
    assert_same_agents(traced, eager)


def test_a_loss_reading_a_tensor_value_runs_eagerly(threads):  # float(tensor): .item()
    """`.item()` in a loss is a Python value the recording would freeze: never replayed."""
    agents = traced_and_eager('ddpg')
    for agent in agents:
        q_losses = agent.loss_functions['q_losses']

        def scaled(batch, q_losses=q_losses):
            updates, info = q_losses(batch)
            scale = 2.0 if float(batch['rews'].mean()) > 0 else 1.0
            return [(loss * scale, optimizer) for loss, optimizer in updates], info
        agent.loss_functions['q_losses'] = scaled
    infos = [learner_updates(agent, 4) for agent in agents]
    assert infos[0] == infos[1]
    assert_same_agents(*agents)
    traced = agents[0]
    assert traced.traced_losses.failed is not None and len(traced.notices) == 1
    assert "read a tensor's value in Python" in traced.notices[0] and '--traced_update False' in traced.notices[0]


def with_loss_changed(agents, name, change):
    """Wrap each agent's loss function `name`: change(agent, batch, updates) -> updates."""
    for agent in agents:
        losses = agent.loss_functions[name]

        def changed(batch, agent=agent, losses=losses):
            updates, info = losses(batch)
            return change(agent, batch, updates), info
        agent.loss_functions[name] = changed


@pytest.mark.parametrize('change_at', [2, 4], ids=['first-replay', 'periodic-check'])
def test_a_changing_python_value_is_caught_and_the_update_runs_eagerly(change_at, monkeypatch, threads):
    """A loss scaled by a Python float that changes: the recording froze the first value. A check
    (at the 1st replay, update 2; and, with CHECK_EVERY 3, at the 3rd, update 4) finds the
    difference on the update where it changed, and from that update on the agent runs eagerly."""
    monkeypatch.setattr(torch_trace, 'CHECK_EVERY', 3)
    agents = traced_and_eager('sac')
    with_loss_changed(agents, 'pi_losses', lambda agent, batch, updates: [(loss * agent.coef, opt) for loss, opt in updates])
    traced, eager = agents
    for update in range(1, 7):
        for agent in agents:
            agent.coef = 1.0 if update < change_at else 0.5
        infos = [agent.train(make_batch(agent.args, update)) for agent in agents]
        assert all(torch.equal(infos[0][key], infos[1][key]) for key in infos[1])
        assert (traced.traced_losses.failed is None) == (update < change_at)
    assert_same_agents(traced, eager)
    assert len(traced.notices) == 1
    assert f'differed from the eager losses at replay {change_at - 1}' in traced.notices[0]


def test_random_draws_inside_a_loss_are_the_eager_draws(threads):
    """A loss that draws its own noise (not through `loss_noise`): the replay draws it too, from
    the same stream as the eager update, and leaves the stream where eager leaves it."""
    agents = traced_and_eager('sac')
    for agent in agents:
        agent.loss_noise = {}
    with_loss_changed(agents, 'q_losses',
                      lambda agent, batch, updates: [(loss * (1 + 0.1 * torch.rand(())), opt) for loss, opt in updates])
    assert_same_training(*agents, 4, seed=11, fed_noise=False)
    follow = []
    for agent in agents:
        torch.manual_seed(12)
        learner_updates(agent, 3, fed_noise=False)
        follow.append(torch.rand(3))
    assert torch.equal(*follow)
    assert agents[0].traced_losses.failed is None


WRITES = {  # a running count kept in a buffer, updated by a loss in different spellings
    'add_': lambda seen, n: seen.add_(n),
    'out=': lambda seen, n: torch.add(seen, n, out=seen),
    'foreach': lambda seen, n: torch._foreach_add_([seen], n),
    'a view': lambda seen, n: seen.view(1).add_(n),
    'unbind': lambda seen, n: seen.view(1).unbind(0)[0].add_(n),
}


@pytest.mark.parametrize('holder', ['buffer', 'attribute'])
@pytest.mark.parametrize('write', list(WRITES))
def test_a_loss_changing_agent_state_in_place_runs_eagerly(write, holder, threads):
    """A replay would add to the count again at each recording and check, so such losses run
    eagerly (the recording stands as the first update), and the count is eager's: a module's
    buffer (a graph input) or a plain tensor attribute (a tensor the graph holds)."""
    agents = traced_and_eager('sac')
    for agent in agents:
        if holder == 'buffer':
            agent.pi.register_buffer('seen', torch.zeros(()))
        else:
            agent.seen = torch.zeros(())

    def counted(agent, batch, updates):
        WRITES[write](agent.pi.seen if holder == 'buffer' else agent.seen, float(batch['obs'].shape[0]))
        return updates
    with_loss_changed(agents, 'pi_losses', counted)
    assert_same_training(*agents, 4, seed=13)
    assert float(agents[0].pi.seen if holder == 'buffer' else agents[0].seen) == 4 * 16
    assert len(agents[0].notices) == 1 and 'in place' in agents[0].notices[0]


def test_in_place_work_on_new_tensors_is_replayed(threads):
    """Writing into a tensor the loss made itself changes nothing of the agent's: replayed."""
    agents = traced_and_eager('sac')

    def bonus(agent, batch, updates):
        extra = batch['rews'] * 0
        extra.add_(batch['rews']).clamp_(-10, 10)
        return [(loss + 1e-3 * extra.mean(), opt) for loss, opt in updates]
    with_loss_changed(agents, 'q_losses', bonus)
    assert_same_training(*agents, 4, seed=14)
    assert agents[0].traced_losses.failed is None


def test_a_recording_that_stops_part_way_leaves_no_write_behind(threads):
    """A loss that writes, then reads a value in Python: the recording stops at the read; what it
    wrote is put back before the eager update runs the loss again."""
    agents = traced_and_eager('sac')
    for agent in agents:
        agent.pi.register_buffer('seen', torch.zeros(()))

    def counted_then_read(agent, batch, updates):
        agent.pi.seen.add_(1.0)
        return [(loss * (2.0 if batch['rews'].mean().item() > 0 else 1.0), opt) for loss, opt in updates]
    with_loss_changed(agents, 'pi_losses', counted_then_read)
    assert_same_training(*agents, 3, seed=15)
    assert float(agents[0].pi.seen) == 3


def test_a_python_number_from_a_tensor_outside_the_graph_runs_eagerly(threads):
    """float() of a tensor that is neither an agent module's tensor nor the batch: make_fx would
    fold it into a constant, so the recording refuses it."""
    agents = traced_and_eager('sac')
    for agent in agents:
        agent.coef = torch.ones(())
    with_loss_changed(agents, 'q_losses', lambda agent, batch, updates: [(loss * float(agent.coef), opt)
                                                                        for loss, opt in updates])
    for update in range(1, 5):
        for agent in agents:
            agent.coef.fill_(1.0 / update)
        infos = [agent.train(make_batch(agent.args, update)) for agent in agents]
        assert all(torch.equal(infos[0][key], infos[1][key]) for key in infos[1])
    assert_same_agents(*agents)
    assert "read a tensor's value in Python (.__float__())" in agents[0].notices[0]


def test_indexing_with_tensors_is_replayed(threads):
    """Advanced indexing (aten.index) replays through its operator: the Python binding of that
    name is another function."""
    agents = traced_and_eager('sac')

    def picked(agent, batch, updates):
        rows = torch.arange(0, batch['rews'].shape[0], 2)
        return [(loss + 1e-3 * batch['rews'][rows].mean(), opt) for loss, opt in updates]
    with_loss_changed(agents, 'q_losses', picked)
    assert_same_training(*agents, 3, seed=16)
    assert agents[0].traced_losses.failed is None


def test_a_traced_agent_copies_and_pickles(threads):
    """Copies record afresh (a recorded graph holds the original's tensors) and train as eager does."""
    import pickle
    traced, eager = traced_and_eager('sac')
    assert_same_training(traced, eager, 2, seed=17)
    copies = [pickle.loads(pickle.dumps(traced)), copy.deepcopy(traced)]
    assert all(agent.traced_losses.replays == {} for agent in copies)
    for agent in copies:
        assert_same_training(agent, copy.deepcopy(eager), 2, seed=18)


@pytest.mark.parametrize('read', ['numpy', 'tolist', 'item'])
def test_a_loss_reading_values_through_any_host_method_runs_eagerly(read, threads):
    agents = traced_and_eager('ddpg')

    def scaled(agent, batch, updates):
        value = np.asarray(getattr(batch['rews'].mean(), read)())
        return [(loss * (2.0 if float(value) > 0 else 1.0), opt) for loss, opt in updates]
    with_loss_changed(agents, 'q_losses', scaled)
    assert_same_training(*agents, 4, seed=0)
    assert len(agents[0].notices) == 1 and "read a tensor's value in Python" in agents[0].notices[0]


def test_a_batch_laid_out_differently_records_again(threads):
    """Same shapes, other strides: the recorded views may not fit it, so it is a new layout."""
    agents = traced_and_eager('rrd-sac')
    for update in range(1, 4):
        batch = {key: torch.as_tensor(value) for key, value in make_batch(agents[0].args, update).items()}
        if update > 1:  # the same values, stored episode-major transposed
            batch['rrd_obs'] = batch['rrd_obs'].transpose(0, 1).contiguous().transpose(0, 1)
        for agent in agents:
            agent.train(batch)
    assert_same_agents(*agents)
    assert len(agents[0].traced_losses.replays) == 2 and agents[0].traced_losses.failed is None


def test_dqn_train_pi_is_an_empty_update(threads):
    """DQN has no policy: train_pi changes nothing and leaves the traced update on."""
    agent = make_agent('rrd-dqn', '--threads', '1')
    before = state_tensors(agent)
    assert agent.train_pi(make_batch(agent.args, 0)) == {}
    assert all(torch.equal(value, before[key]) for key, value in state_tensors(agent).items())
    agent.train(make_batch(agent.args, 1))
    assert agent.traced_losses.failed is None and agent.notices == []


@pytest.mark.filterwarnings('ignore:`torch.jit.script_method` is deprecated')  # torch.compile's own imports
@pytest.mark.parametrize('flags', [('--traced_update', 'False'), ('--amp', 'True'), ('--compile', 'True')])
def test_no_replay_where_it_does_not_apply(flags, threads):
    assert make_agent('sac', '--threads', '1', *flags).traced_losses is None


def test_a_run_logs_why_its_update_runs_eagerly(tmp_path, monkeypatch, capsys, threads):
    """The learner prints the agent's notice once, in the run's log; the run carries on eagerly."""
    import train
    from algorithm.basis_alg import sac_torch
    from test_resume import TINY
    q_losses = sac_torch.SAC.q_losses

    def reads_a_value(self, batch):
        updates, info = q_losses(self, batch)
        return [(loss * (1.0 if float(batch['rews'].mean()) < 1e9 else 0.0), opt) for loss, opt in updates], info
    monkeypatch.setattr(sac_torch.SAC, 'q_losses', reads_a_value)
    logdir = tmp_path / 'log'
    train.main([*TINY, '--use_pytorch=True', '--threads=1', f'--logdir={logdir}'])
    out = capsys.readouterr().out
    warnings = [line for line in out.splitlines() if line.startswith('warning:')]
    assert len(warnings) == 1 and "read a tensor's value in Python" in warnings[0], out
    (log,) = (logdir / 'text').glob('*.log')
    assert log.read_text().count(warnings[0]) == 1
