"""Behaviours of the original release that the other tests do not pin down (issue 8): each test
fails when the behaviour changes.

- warmup: continuous agents act with their exploration policy from the first step; only DQN and
  `--random_warmup` act uniformly at random until `warmup` steps are stored;
- TD3's delayed policy update: every pi_delay_freq-th update, the first at update pi_delay_freq;
- SAC's target entropy, -prod(acts_dims), on each backend;
- double DQN takes the next action's argmax from the online net and its value from the target;
- tools/weight_transfer copies state: training either agent after a transfer leaves the other as
  it was.
"""
import types

import numpy as np
import pytest

pytest.importorskip('tensorflow')
torch = pytest.importorskip('torch')

from algorithm import BASIS_ALGS, agent_class, create_agent  # noqa: E402
from arguments import get_args  # noqa: E402
from learner import Learner  # noqa: E402
from tools.weight_transfer import read_tf, tf_to_torch, torch_to_tf, torch_to_tf_values, write_tf  # noqa: E402

F32 = np.float32


@pytest.fixture(autouse=True)
def no_env_backend(monkeypatch):
    monkeypatch.delenv('USE_PYTORCH', raising=False)


# ---- the learner: warmup and TD3's policy delay (backend-free: the learner drives both) ----------
POLICY_ACTION = np.full(2, 0.5, F32)


class RecordingAgent:
    """Records what the learner asks of it."""

    def __init__(self):
        self.calls = []

    def step(self, obs, explore=False):
        self.calls.append(('step', explore))
        return POLICY_ACTION

    def train(self, batch):
        self.calls.append('train')
        return {}

    def train_q(self, batch):
        self.calls.append('q')
        return {}

    def train_pi(self, batch):
        self.calls.append('pi')
        return {}

    def target_update(self):
        self.calls.append('target')


def make_learner(alg='sac', discrete=False, random_warmup=False, stored=0, **flags):
    args = types.SimpleNamespace(seed=0, alg=alg, basis_alg=None, discrete=discrete, random_warmup=random_warmup,
                                 warmup=100, acts_dims=[2], eps_l=1.0, eps_r=0.01, eps_decay=1000, **flags)
    env = types.SimpleNamespace(reset=lambda seed=None: np.zeros(3, F32))
    buffer = types.SimpleNamespace(step_counter=stored, sample_batch=lambda: {})
    logger = types.SimpleNamespace(add_dict=lambda info, prefix='': None)
    agent = RecordingAgent()
    agent.update_kinds = ('train_q', 'train_pi') if alg == 'td3' else ('train',)
    return Learner(args, env, agent, buffer, logger), agent


@pytest.mark.parametrize('discrete, random_warmup, acts_by_policy', [
    (False, False, True),   # continuous: the exploration policy from the first step (the original release)
    (False, True, False),   # --random_warmup: uniform until warm
    (True, False, False),   # DQN: uniform until warm
])
def test_warmup_actions(discrete, random_warmup, acts_by_policy):
    learner, agent = make_learner(discrete=discrete, random_warmup=random_warmup, stored=99)
    action = learner.act(np.zeros(3, F32))
    assert (agent.calls == [('step', True)]) == acts_by_policy
    if not acts_by_policy:
        assert np.shape(action) == (() if discrete else (2,)) and not np.array_equal(action, POLICY_ACTION)
    learner.buffer.step_counter = 100  # warm: every agent acts with its exploration policy
    assert learner.act(np.zeros(3, F32)) is POLICY_ACTION and agent.calls[-1] == ('step', True)


def test_td3_policy_update_is_delayed():
    learner, agent = make_learner(alg='td3', pi_delay_freq=3, train_target=2, stored=100)
    for _ in range(9):
        learner.train_step()
    expected = []
    for update in range(1, 10):
        expected += ['q'] + (['pi'] if update % 3 == 0 else []) + (['target'] if update % 2 == 0 else [])
    assert agent.calls == expected  # the policy at updates 3, 6, 9: first at update pi_delay_freq


@pytest.mark.parametrize('backend', ['tf', 'torch'])
@pytest.mark.parametrize('alg, basis_alg', [(basis, None) for basis in BASIS_ALGS] +
                         [(alg, basis) for alg in ('rrd', 'ircr') for basis in BASIS_ALGS])
def test_only_td3_splits_its_updates(backend, alg, basis_alg):
    """The learner makes the updates the agent class declares: TD3 (and RRD or IRCR over it)
    a critic update and a delayed policy update, every other agent one update."""
    kinds = agent_class(alg, basis_alg, backend).update_kinds
    assert kinds == (('train_q', 'train_pi') if 'td3' in (alg, basis_alg) else ('train',))


def test_td3_default_delay_is_two():
    assert get_args(['--alg', 'td3']).pi_delay_freq == 2
    assert get_args(['--alg', 'rrd', '--basis_alg', 'td3']).pi_delay_freq == 2


# ---- agents of both backends ----------------------------------------------------------------------
def make_agents(argv, obs_dims, acts_dims):
    """(TF agent, torch agent) of one configuration; the torch one gets the TF one's state."""
    agents = []
    for use_pytorch in (False, True):
        args = get_args(argv + ['--use_pytorch', str(use_pytorch)])
        args.obs_dims, args.acts_dims, args.cuda = list(obs_dims), list(acts_dims), False
        agents.append(create_agent(args))
    tf_to_torch(*agents)
    return agents


def make_batch(args, seed, size=16, episodes=2, samples=4):
    rng = np.random.RandomState(seed)
    act_dim = args.acts_dims[0]

    def obs(*lead):
        return rng.normal(size=list(lead) + list(args.obs_dims)).astype(F32)

    def acts(*lead):
        if args.discrete:
            return rng.randint(0, act_dim, size=lead).astype(np.int64)
        return rng.uniform(-1, 1, size=list(lead) + [act_dim]).astype(F32)

    # SAC noise truncated to +-1.5: TF's and torch's tanh differ deep in saturation (test_parity.py).
    noise = lambda: np.clip(rng.normal(size=(size, act_dim)), -1.5, 1.5).astype(F32)  # noqa: E731
    return {'obs': obs(size), 'obs_next': obs(size), 'acts': acts(size), 'rews': rng.normal(size=(size, 1)).astype(F32),
            'done': (rng.uniform(size=(size, 1)) < 0.2).astype(F32), 'pi_noise': noise(), 'pi_next_noise': noise(),
            'rrd_obs': obs(episodes, samples), 'rrd_obs_next': obs(episodes, samples),
            'rrd_acts': acts(episodes, samples), 'rrd_rews': rng.normal(size=(episodes, 1)).astype(F32)}


@pytest.mark.parametrize('act_dim', [3, 6])
def test_sac_target_entropy(act_dim):
    """The temperature's gradient is -(mean log pi + target entropy), target entropy = -act_dim."""
    tf_agent, torch_agent = make_agents(['--env', 'Hopper-v2', '--alg', 'sac'], [11], [act_dim])
    batch = make_batch(torch_agent.args, seed=act_dim)
    tensors = torch_agent.to_tensors(batch)
    updates, _ = torch_agent.pi_losses(tensors)
    (alpha_loss,) = [loss for loss, optimizer in updates if optimizer is torch_agent.alpha_optimizer]
    log_alpha = torch_agent.temperature.log_alpha
    (torch_grad,) = torch.autograd.grad(alpha_loss, log_alpha)
    _, log_p, _ = torch_agent.pi(torch_agent.preprocess_obs(tensors['obs']), tensors['pi_noise'])
    mean_log_p = log_p.mean().item()
    assert torch_grad.item() == pytest.approx(-(mean_log_p - act_dim), rel=1e-6)

    # TF: the gradient its Adam steps (train and train_pi) apply to log_alpha, same state and batch
    (gradient,) = {op.inputs[9] for op in tf_agent.graph.get_operations()
                   if op.type == 'ResourceApplyAdam' and op.inputs[0].op.name == 'temperature/log_alpha'}
    tf_grad = tf_agent.sess.run(gradient, tf_agent.feed_dict(batch))
    assert float(tf_grad) == pytest.approx(-(mean_log_p - act_dim), abs=1e-4)


@pytest.mark.parametrize('double, target', [(True, 0.0), (False, 5.0)])
def test_double_dqn_takes_the_argmax_from_the_online_net(double, target):
    """Zero kernels make each Q-network output its last bias for every input: online [1, 0]
    (argmax 0), target [0, 5] (argmax 1). Double DQN's next value is target[argmax online] = 0,
    plain DQN's max target = 5; with Q(s, a=0) = 1, reward 0 and gamma 0.99 the Huber loss is
    0.5 for |1 - 0| and 3.45 for |1 - 4.95| (taking the argmax from the target net would give 3.45)."""
    argv = ['--env', 'CartPole-v1', '--alg', 'dqn', '--double', str(double)]
    tf_agent, torch_agent = make_agents(argv, [4], [2])
    values = read_tf(tf_agent)
    for name, value in values.items():
        if name.split('/')[0] in ('q', 'q_target'):
            values[name] = np.zeros_like(value)
    heads = {name for name, value in values.items() if name.endswith('/bias') and value.shape == (2,)}
    assert heads == {'q/advantage/2/bias', 'q_target/advantage/2/bias'}
    values['q/advantage/2/bias'], values['q_target/advantage/2/bias'] = np.array([1, 0], F32), np.array([0, 5], F32)
    write_tf(tf_agent, values)
    tf_to_torch(tf_agent, torch_agent)
    rng = np.random.RandomState(0)
    batch = {'obs': rng.normal(size=(8, 4)).astype(F32), 'obs_next': rng.normal(size=(8, 4)).astype(F32),
             'acts': np.zeros(8, np.int64), 'rews': np.zeros((8, 1), F32), 'done': np.zeros((8, 1), F32)}
    error = abs(1.0 - 0.99 * target)
    huber = 0.5 * error ** 2 if error < 1 else error - 0.5
    for agent in (tf_agent, torch_agent):
        assert float(agent.train(batch)['Q_loss']) == pytest.approx(huber, rel=1e-6), type(agent).__module__


# ---- weight transfer copies --------------------------------------------------------------------------
def update(agent, batch):
    agent.normalizer_update(batch)
    agent.train(batch)
    agent.target_update()


def torch_state(torch_agent, tf_agent):
    """A copy of the torch agent's whole state (networks, normaliser, optimisers), by TF name."""
    return {name: np.array(value, copy=True) for name, value in torch_to_tf_values(torch_agent, tf_agent).items()}


def same(first, second):
    return sorted(name for name in first if not np.array_equal(first[name], second[name]))


@pytest.mark.parametrize('transfer', [torch_to_tf, tf_to_torch])
def test_transfer_copies(transfer):
    tf_agent, torch_agent = make_agents(['--env', 'Hopper-v2', '--alg', 'rrd', '--basis_alg', 'sac',
                                         '--obs_normalization', 'True'], [11], [3])
    for seed in range(2):  # state of its own (moments, normaliser, targets) on the side that is copied
        update(torch_agent if transfer is torch_to_tf else tf_agent, make_batch(torch_agent.args, seed))
    transfer(*((torch_agent, tf_agent) if transfer is torch_to_tf else (tf_agent, torch_agent)))
    tf_before, torch_before = read_tf(tf_agent), torch_state(torch_agent, tf_agent)

    update(torch_agent, make_batch(torch_agent.args, seed=10))
    torch_after = torch_state(torch_agent, tf_agent)
    assert len(same(torch_after, torch_before)) > 50  # training moved the torch agent...
    assert same(read_tf(tf_agent), tf_before) == []   # ...and not a single TF variable

    update(tf_agent, make_batch(torch_agent.args, seed=11))
    assert len(same(read_tf(tf_agent), tf_before)) > 50
    assert same(torch_state(torch_agent, tf_agent), torch_after) == []
