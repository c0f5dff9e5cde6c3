"""Atari end to end with the real emulator: the learner's env loop, the frame-stack buffers
(plain/RRD/IRCR) fed by it, and torch DQN / RRD-DQN updates on batches sampled from them.

Preprocessing, the no-op reset and the episodic sum are tested against the env alone in
test_envs.py; hand-checked DQN losses in test_torch_agents.py. Here every stack the buffers hand
out is compared with an observation the env really returned during the loop.
"""
import math

import numpy as np
import pytest

from algorithm.replay_buffer import create_buffer
from arguments import get_args
from learner import Learner
from train import describe_env
from envs import make_env


class NullLogger:
    def __init__(self):
        self.records = {}

    def add_dict(self, info, prefix='', count=1):
        for key, value in info.items():
            self.add_record(prefix + key, value)

    def add_record(self, key, value, count=1):
        self.records.setdefault(key, []).append(value)


class RecordingEnv:
    """Passes everything through to the env; keeps every episode as the agent experienced it:
    the T + 1 observations returned by reset/step, the actions sent, the rewards and flags."""

    def __init__(self, env):
        self.env, self.episodes = env, []

    def __getattr__(self, name):
        return getattr(self.env, name)

    def reset(self, seed=None):
        obs = self.env.reset(seed=seed)
        self.episodes.append(dict(obs=[obs.copy()], acts=[], rews=[], dense=[], done=[], real_done=False))
        return obs

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        episode = self.episodes[-1]
        episode['obs'].append(obs.copy())
        episode['acts'].append(int(action))
        episode['rews'].append(reward)
        episode['dense'].append(info['dense_reward'])
        episode['done'].append(terminated)
        episode['real_done'] = terminated or truncated
        return obs, reward, terminated, truncated, info


class RandomAgent:
    """Acts uniformly; checks that what the learner shows it is the env's latest observation."""

    def __init__(self, n_actions, env):
        self.n_actions, self.env, self.epsilons, self.seen = n_actions, env, [], 0
        self.epsilon = None

    def step(self, obs, explore=False, test_info=False):
        assert explore
        np.testing.assert_array_equal(obs, self.env.episodes[-1]['obs'][-1])
        self.seen += 1
        self.epsilons.append(self.epsilon)
        return np.random.randint(self.n_actions)


def atari_args(env='Pong', alg='rrd', extra=()):
    args = get_args([f'--env={env}', f'--alg={alg}', '--use_pytorch=True', '--cuda=False', *extra])
    describe_env(args, make_env(args))
    return args


def transition_keys(episode):
    """(obs_t, obs_t+1, a_t) byte keys of every step of a recorded episode."""
    obs = episode['obs']
    return [obs[t].tobytes() + obs[t + 1].tobytes() + bytes([episode['acts'][t]])
            for t in range(len(episode['acts']))]


def row_key(obs, obs_next, act):
    return np.ascontiguousarray(obs).tobytes() + np.ascontiguousarray(obs_next).tobytes() + bytes([int(act)])


def check_held_episodes_exactly(buffer, stored):
    """The buffer holds the newest stored episodes, each rebuilt frame for frame."""
    storage = buffer.storage
    held = stored[len(stored) - storage.episodes_held:]
    assert storage.steps_held == sum(len(ep['acts']) for ep in held) <= buffer.storage.capacity
    for index, episode in enumerate(held):
        n_steps = len(episode['acts'])
        assert storage.ep_len[index] == n_steps
        assert storage.ep_ret[index] == pytest.approx(sum(episode['dense']))
        anchors = storage.anchors(np.full(n_steps, index), np.arange(n_steps))
        obs, obs_next = storage.obs_pair(anchors)
        expected = np.stack(episode['obs'])
        np.testing.assert_array_equal(obs, expected[:-1])
        np.testing.assert_array_equal(obs_next, expected[1:])
        np.testing.assert_array_equal(storage.acts[anchors], episode['acts'])
        np.testing.assert_array_equal(storage.rews[anchors], np.float32(episode['rews']))
        np.testing.assert_array_equal(storage.done[anchors], episode['done'])


GAMES = {
    # Pong games of random play last ~900 steps: every episode ends at the time cap (done False).
    'Pong': dict(cap=120, steps=1500),
    # Breakout games of random play end after ~130-250 steps: game overs (done True) and caps mix.
    'Breakout': dict(cap=170, steps=1500),
}


@pytest.fixture(scope='module', params=list(GAMES))
def loop(request):
    """The learner's env loop on a real game with random actions; its episodes go to an RRD
    buffer (the learner's) and, teed, to an IRCR buffer. Held episodes are checked after every
    store, so the checks run across episode boundaries, ring wrap-around and eviction."""
    np.random.seed(3)
    game = GAMES[request.param]
    extra = [f'--test_timesteps={game["cap"]}', '--noop=8', '--buffer_size=300', '--warmup=150', '--seed=5']
    args = atari_args(request.param, 'rrd', [*extra, '--rrd_batch_size=32', '--rrd_sample_size=8'])
    env = RecordingEnv(make_env(args))
    buffer, ircr = create_buffer(args), create_buffer(atari_args(request.param, 'ircr', extra))
    agent, stored, ring_wraps = RandomAgent(args.acts_dims[0], env), [], [0]

    def store_episode(obs, acts, rews, done):
        type(buffer).store_episode(buffer, obs, acts, rews, done)
        ircr.store_episode(obs, acts, rews, done)
        stored.append(env.episodes[-1])
        check_held_episodes_exactly(buffer, stored)
        last = buffer.storage.episodes_held - 1
        ring_wraps[0] += buffer.storage.ep_start[last] + buffer.storage.ep_len[last] + 4 > buffer.storage.slots

    buffer.store_episode = store_episode
    learner = Learner(args, env, agent, buffer, NullLogger())
    for _ in range(game['steps']):
        learner.env_step()
    # random actions until the stored episodes reach --warmup steps, the agent's after that
    lengths = np.cumsum([len(episode['acts']) for episode in stored])
    assert agent.seen == game['steps'] - lengths[np.argmax(lengths >= args.warmup)] > 0
    return dict(game=request.param, args=args, buffer=buffer, ircr=ircr, stored=stored, learner=learner,
                ring_wraps=ring_wraps[0])


def test_loop_covers_boundaries_eviction_and_episode_ends(loop):
    stored, buffer = loop['stored'], loop['buffer']
    cap = GAMES[loop['game']]['cap']
    assert len(stored) >= 8 and buffer.storage.episodes_held < len(stored)  # evicted
    assert loop['ring_wraps'] > 0
    assert buffer.ep_counter == len(stored)
    assert buffer.step_counter == sum(len(ep['acts']) for ep in stored)
    assert all(episode['real_done'] for episode in stored)
    for episode in stored:
        # episodic rewards: 0 until the last step, which pays the episode's dense sum
        assert episode['rews'][:-1] == [0.0] * (len(episode['acts']) - 1)
        assert episode['rews'][-1] == pytest.approx(sum(episode['dense']))
        assert len(episode['acts']) <= cap
        assert episode['done'][:-1] == [False] * (len(episode['acts']) - 1)
        if len(episode['acts']) < cap:
            assert episode['done'][-1]  # a game over before the cap
        # consecutive observations overlap by frames - 1 (the stack shifts by one frame)
        obs = np.stack(episode['obs'])
        np.testing.assert_array_equal(obs[1:, ..., :-1], obs[:-1, ..., 1:])
    if loop['game'] == 'Breakout':
        assert any(ep['done'][-1] for ep in stored) and not all(ep['done'][-1] for ep in stored)
    else:
        assert not any(ep['done'][-1] for ep in stored)
        assert any(sum(ep['dense']) != 0 for ep in stored)  # points were scored


def test_sampled_stacks_are_observations_the_agent_saw(loop):
    buffer, stored = loop['buffer'], loop['stored']
    held = stored[len(stored) - buffer.storage.episodes_held:]
    known = {}
    for episode in held:
        for t, key in enumerate(transition_keys(episode)):
            known.setdefault(key, []).append((episode['rews'][t], float(episode['done'][t])))
    batch = buffer.sample_batch(256)
    assert batch['obs'].shape == batch['obs_next'].shape == (256, 84, 84, 4)
    assert batch['obs'].dtype == np.uint8 and batch['acts'].dtype == np.int64
    for i in range(256):
        outcomes = known[row_key(batch['obs'][i], batch['obs_next'][i], batch['acts'][i])]
        assert (batch['rews'][i, 0], batch['done'][i, 0]) in outcomes
    # first steps of episodes (stacks reaching back to the reset frames) are sampled too
    first = {row_key(ep['obs'][0], ep['obs'][1], ep['acts'][0]) for ep in held}
    batch = buffer.sample_batch(2000)
    assert any(row_key(o, n, a) in first for o, n, a in zip(batch['obs'], batch['obs_next'], batch['acts']))


def candidates(stored, rows):
    """Stored episodes that contain every (obs, obs_next, act) row (several when identical
    reset frames make early steps ambiguous)."""
    found = []
    for episode in stored:
        keys = set(transition_keys(episode))
        if all(row in keys for row in rows):
            found.append(episode)
    return found


def test_rrd_batch_shapes_and_targets(loop):
    buffer, stored, args = loop['buffer'], loop['stored'], loop['args']
    held = stored[len(stored) - buffer.storage.episodes_held:]
    n_episodes, k = args.rrd_batch_size // args.rrd_sample_size, args.rrd_sample_size
    assert (n_episodes, k) == (4, 8)
    targets_seen = set()
    for _ in range(5):
        batch = buffer.sample_batch()
        assert batch['obs'].shape == (args.batch_size, 84, 84, 4)
        assert batch['rrd_obs'].shape == batch['rrd_obs_next'].shape == (n_episodes, k, 84, 84, 4)
        assert batch['rrd_obs'].dtype == batch['rrd_obs_next'].dtype == np.uint8
        assert batch['rrd_acts'].shape == (n_episodes, k) and batch['rrd_acts'].dtype == np.int64
        assert batch['rrd_rews'].shape == (n_episodes, 1) and batch['rrd_rews'].dtype == np.float32
        assert 'rrd_var_coef' not in batch
        for e in range(n_episodes):
            rows = [row_key(*row) for row in zip(batch['rrd_obs'][e], batch['rrd_obs_next'][e], batch['rrd_acts'][e])]
            assert len(set(rows)) == k  # K <= T: drawn without replacement
            owners = candidates(held, rows)
            assert owners, 'an RRD episode sample mixes transitions of different episodes'
            # target = R_ep / T, from the dense rewards the env reported
            assert any(batch['rrd_rews'][e, 0] == pytest.approx(sum(ep['dense']) / len(ep['acts']), abs=1e-7)
                       for ep in owners)
            targets_seen.add(round(float(batch['rrd_rews'][e, 0]), 6))
    assert len(targets_seen) > 1 or len({sum(ep['dense']) / len(ep['acts']) for ep in held}) == 1


def test_ircr_batch(loop):
    ircr, stored = loop['ircr'], loop['stored']
    n_held = ircr.storage.episodes_held
    fifo = stored[len(stored) - n_held:]
    returns = np.array([sum(ep['dense']) for ep in stored])
    tenth_best = np.sort(returns)[-min(10, len(stored))]
    heap = [ep for ep, ret in zip(stored, returns) if ret >= tenth_best]
    pool = np.array([sum(ep['dense']) for ep in fifo] + list(np.sort(returns)[-min(10, len(stored)):]))
    lo, hi = pool.min(), pool.max()
    batch = ircr.sample_batch(64)
    assert batch['obs'].shape == (64, 84, 84, 4) and batch['obs'].dtype == np.uint8
    assert batch['rews'].shape == (64, 1) and batch['rews'].dtype == np.float32
    assert ((batch['rews'] >= 0) & (batch['rews'] <= 1)).all()
    for i in range(64):
        row = row_key(batch['obs'][i], batch['obs_next'][i], batch['acts'][i])
        owners = candidates(fifo if i < 32 else heap, [row])
        assert owners
        expected = [0.0 if hi == lo else (sum(ep['dense']) - lo) / (hi - lo) for ep in owners]
        assert any(batch['rews'][i, 0] == pytest.approx(value, abs=1e-6) for value in expected)


def test_learner_epsilon_schedule_and_updates_on_atari():
    """Warmup acts randomly without asking the agent; then epsilon decays per env step (also
    within an episode); train_batches updates per iteration; hard target copies every
    train_target updates; Epsilon is reported at the end of a cycle."""
    np.random.seed(0)
    args = atari_args('Pong', 'dqn', ['--test_timesteps=30', '--noop=4', '--buffer_size=500', '--warmup=60',
                                      '--timesteps=20', '--iterations=6', '--train_batches=3',
                                      '--train_target=4', '--eps_decay=100', '--eps_r=0.1'])
    env = RecordingEnv(make_env(args))
    agent = RandomAgent(args.acts_dims[0], env)
    calls = []
    agent.train = lambda batch: calls.append(('train', batch['obs'].shape)) or {'Q_loss': 0.5}
    agent.target_update = lambda: calls.append(('target', len([c for c in calls if c[0] == 'train'])))
    logger = NullLogger()
    learner = Learner(args, env, agent, create_buffer(args), logger)
    learner.cycle()
    # 120 env steps in episodes of 30: warm once 60 are stored, i.e. from env step 61 on
    assert agent.seen == 60
    expected_eps = [1.0 + (0.1 - 1.0) * min(1.0, n / 100) for n in range(60, 120)]
    np.testing.assert_allclose(agent.epsilons, expected_eps)
    assert len(set(agent.epsilons[:30])) == 30  # it moves inside an episode, not only at its end
    # iterations 3..6 (buffer warm after 60 steps) train 3 times each
    trains = [c for c in calls if c[0] == 'train']
    assert len(trains) == 12 and all(shape == (32, 84, 84, 4) for _, shape in trains)
    assert [c[1] for c in calls if c[0] == 'target'] == [4, 8, 12]
    assert logger.records['charts/Epsilon'] == [pytest.approx(1.0 - 0.9)]  # 120 steps > eps_decay
    assert len(logger.records['losses/Q_loss']) == 12


def test_tester_uses_test_eps_on_atari():
    """Test episodes act greedily (explore=False) except with probability test_eps."""
    from learner import Tester

    class GreedyAgent:
        calls = 0

        def step(self, obs, explore=False, test_info=False):
            assert not explore and test_info and obs.shape == (84, 84, 4)
            GreedyAgent.calls += 1
            return 0, {'Q_average': 1.0}

    for test_eps, lo, hi in [(0.0, 40, 40), (1.0, 0, 0), (0.5, 8, 32)]:
        np.random.seed(1)
        GreedyAgent.calls = 0
        args = atari_args('Pong', 'dqn', ['--test_timesteps=40', '--noop=4', f'--test_eps={test_eps}',
                                          '--test_rollouts=1', '--save_rews=False'])
        logger = NullLogger()
        tester = Tester(args, make_env(args), GreedyAgent(), logger)
        tester.cycle_summary(env_steps=0)
        assert lo <= GreedyAgent.calls <= hi
        assert logger.records['charts/TestSteps'] == [40]
        assert len(logger.records.get('charts/Q_average', [])) == GreedyAgent.calls


# ---- torch agents on real sampled batches ---------------------------------------------------------------
try:
    import torch
except ImportError:  # the env and buffer tests above need no backend
    torch = None
needs_torch = pytest.mark.skipif(torch is None, reason='torch is not installed')


def agent_for(loop, alg, extra=()):
    from algorithm import create_agent
    torch.manual_seed(0)
    args = atari_args(loop['game'], alg, extra)
    return create_agent(args)


def snapshot(module):
    return [p.detach().clone() for p in module.parameters()]


def changed(before, module):
    return any(not torch.equal(a, b) for a, b in zip(before, module.parameters()))


def expected_q_loss(agent, batch, rews, double=False):
    """The Huber TD loss from the agent's networks before the update, on a real batch."""
    obs = torch.as_tensor(batch['obs']).float() / 255
    obs_next = torch.as_tensor(batch['obs_next']).float() / 255
    acts = torch.as_tensor(batch['acts'])
    with torch.no_grad():
        q_next = agent.q_target(obs_next)
        if double:
            v_next = q_next.gather(1, agent.q(obs_next).argmax(1, keepdim=True))
        else:
            v_next = q_next.max(1, keepdim=True).values
        y = rews + (1 - torch.as_tensor(batch['done'])) * agent.args.gamma * v_next
        q = agent.q(obs).gather(1, acts[:, None])
        return torch.nn.functional.huber_loss(q, y).item()


@needs_torch
@pytest.mark.parametrize('variant', [(), ('--double=True', '--dueling=True')])
def test_torch_dqn_train_step_on_a_real_batch(loop, variant):
    agent = agent_for(loop, 'dqn', variant)
    assert (agent.q.value is not None) == bool(variant)
    batch = loop['buffer'].sample_batch()
    expected = expected_q_loss(agent, batch, torch.as_tensor(batch['rews']), double=bool(variant))
    q_before, target_before = snapshot(agent.q), snapshot(agent.q_target)
    info = agent.train(batch)
    assert set(info) == set(agent.train_info) == {'Q_loss'}
    assert float(info['Q_loss']) == pytest.approx(expected, rel=1e-4)
    assert changed(q_before, agent.q) and not changed(target_before, agent.q_target)
    agent.target_update()
    assert all(torch.equal(a, b) for a, b in zip(agent.q.parameters(), agent.q_target.parameters()))
    # acting on the env's own observation and on a stack rebuilt by the buffer
    episode = loop['stored'][-1]
    action, step_info = agent.step(episode['obs'][5], test_info=True)
    assert isinstance(action, int) and 0 <= action < loop['args'].acts_dims[0] and np.isfinite(step_info['Q_average'])
    assert agent.step(batch['obs'][0]) in range(loop['args'].acts_dims[0])


@needs_torch
def test_torch_rrd_dqn_train_step_on_a_real_batch(loop):
    agent = agent_for(loop, 'rrd', ['--rrd_batch_size=32', '--rrd_sample_size=8'])
    batch = loop['buffer'].sample_batch()
    net = agent.reward_net

    def proxy(obs, acts, obs_next):
        with torch.no_grad():
            return net(torch.as_tensor(obs).float() / 255, torch.as_tensor(acts),
                       torch.as_tensor(obs_next).float() / 255)

    rews = proxy(batch['obs'], batch['acts'], batch['obs_next'])
    assert rews.shape == (32, 1)
    rrd_r = proxy(batch['rrd_obs'].reshape(-1, 84, 84, 4), batch['rrd_acts'].reshape(-1),
                  batch['rrd_obs_next'].reshape(-1, 84, 84, 4)).view(4, 8)
    expected_r_loss = ((rrd_r.mean(1, keepdim=True) - torch.as_tensor(batch['rrd_rews'])) ** 2).mean().item()
    expected_q = expected_q_loss(agent, batch, rews)  # the basis learns from r_theta, not the env
    r_before, q_before = snapshot(net), snapshot(agent.q)
    info = agent.train(batch)
    assert set(info) == set(agent.train_info) == {'Q_loss', 'R_loss'}
    assert float(info['R_loss']) == pytest.approx(expected_r_loss, rel=1e-4)
    assert float(info['Q_loss']) == pytest.approx(expected_q, rel=1e-4)
    assert changed(r_before, net) and changed(q_before, agent.q)
    # a few more updates on the same batch fit the targets better
    for _ in range(15):
        last = float(agent.train(batch)['R_loss'])
    assert last < float(info['R_loss']) or math.isclose(float(info['R_loss']), 0.0, abs_tol=1e-8)
