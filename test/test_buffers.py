"""Replay buffer semantics (docs/algorithms.md sections 7-9): alignment, RRD draws, eviction, IRCR, Atari stacks.

Observations encode (episode id, step) in their first entries / pixels, so every sampled row can
be checked against what was stored.
"""
import types

import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view

from algorithm.replay_buffer import storage
from algorithm.replay_buffer import (EpisodeStorage, IRCRReplayBuffer, ReplayBuffer, RRDReplayBuffer,
                                     create_buffer)
from algorithm.replay_buffer.buffers import draw_episode_steps


def make_args(**overrides):
    args = dict(buffer_size=1000, batch_size=64, obs_dims=[3], acts_dims=[2], discrete=False, alg='sac',
                rrd_batch_size=32, rrd_sample_size=8, rrd_bias_correction=False, env_category='mujoco')
    args.update(overrides)
    return types.SimpleNamespace(**args)


class VectorEpisodes:
    """Episodes whose obs[t] = [id, t, noise]; acts, rews and done are functions of (id, t)."""

    def __init__(self):
        self.stored = {}

    def store(self, buffer, ep_id, length, terminated=True, rews=None):
        t = np.arange(length + 1)
        obs = np.stack([np.full(length + 1, ep_id), t, np.random.randn(length + 1)], axis=1)
        acts = np.stack([np.full(length, ep_id), t[:-1]], axis=1) / 1000.0
        rews = np.random.randn(length).astype(np.float32) if rews is None else np.asarray(rews, np.float32)
        done = np.zeros(length, bool)
        done[-1] = terminated
        buffer.store_episode(obs, acts, rews, done)
        self.stored[ep_id] = dict(obs=obs.astype(np.float32), acts=acts.astype(np.float32), rews=rews, done=done)

    def check_transitions(self, obs, obs_next, acts, rews=None, done=None):
        """Every row matches the stored episode it decodes to; returns the (ids, steps)."""
        ids, steps = obs[..., 0].astype(int), obs[..., 1].astype(int)
        for index in np.ndindex(ids.shape):
            episode, t = self.stored[ids[index]], steps[index]
            np.testing.assert_array_equal(obs[index], episode['obs'][t])
            np.testing.assert_array_equal(obs_next[index], episode['obs'][t + 1])
            np.testing.assert_array_equal(acts[index], episode['acts'][t])
            if rews is not None:
                assert rews[index][0] == episode['rews'][t]
            if done is not None:
                assert done[index][0] == float(episode['done'][t])
        return ids, steps


def check_batch_format(batch, n, obs_shape, obs_dtype=np.float32, acts_shape=(2,), acts_dtype=np.float32):
    assert batch['obs'].shape == batch['obs_next'].shape == (n, *obs_shape)
    assert batch['obs'].dtype == batch['obs_next'].dtype == obs_dtype
    assert batch['acts'].shape == (n, *acts_shape) and batch['acts'].dtype == acts_dtype
    for key in ('rews', 'done'):
        assert batch[key].shape == (n, 1) and batch[key].dtype == np.float32


# ---- plain sampling --------------------------------------------------------------------------------
def test_create_buffer_picks_mode():
    assert type(create_buffer(make_args(alg='td3'))) is ReplayBuffer
    assert type(create_buffer(make_args(alg='rrd'))) is RRDReplayBuffer
    assert type(create_buffer(make_args(alg='ircr'))) is IRCRReplayBuffer


def test_uniform_samples_are_aligned_with_what_was_stored():
    np.random.seed(0)
    buffer, episodes = create_buffer(make_args()), VectorEpisodes()
    for ep_id, length in enumerate([5, 1, 17, 3]):
        episodes.store(buffer, ep_id, length, terminated=ep_id % 2 == 0)
    batch = buffer.sample_batch()
    check_batch_format(batch, 64, (3,))
    episodes.check_transitions(**batch)
    assert buffer.sample(7)['obs'].shape == (7, 3)
    assert (buffer.step_counter, buffer.ep_counter, len(buffer), buffer.episodes_held) == (26, 4, 26, 4)


def test_done_flags_mark_terminations_only():
    np.random.seed(1)
    buffer, episodes = create_buffer(make_args()), VectorEpisodes()
    episodes.store(buffer, 0, 4, terminated=True)
    episodes.store(buffer, 1, 4, terminated=False)  # time cap: the last step is not a termination
    batch = buffer.sample_batch(500)
    ids, steps = episodes.check_transitions(**batch)
    np.testing.assert_array_equal(batch['done'][:, 0], (ids == 0) & (steps == 3))


def test_sampling_is_uniform_over_transitions_and_seeded_by_numpy():
    buffer, episodes = create_buffer(make_args()), VectorEpisodes()
    episodes.store(buffer, 0, 10)
    episodes.store(buffer, 1, 30)
    np.random.seed(3)
    first = buffer.sample_batch(4000)
    np.random.seed(3)
    np.testing.assert_array_equal(first['obs'], buffer.sample_batch(4000)['obs'])
    counts = np.bincount((first['obs'][:, 0] * 10 + first['obs'][:, 1]).astype(int), minlength=40)
    assert len(counts) == 40 and 60 < counts.min() and counts.max() < 140  # 100 expected each


def test_discrete_acts_are_int64_indices():
    np.random.seed(4)
    buffer = create_buffer(make_args(alg='rrd', discrete=True, acts_dims=[5]))
    buffer.store_episode(np.random.randn(21, 3), np.arange(20) % 5, np.ones(20), np.zeros(20))
    batch = buffer.sample_batch()
    check_batch_format(batch, 64, (3,), acts_shape=(), acts_dtype=np.int64)
    assert batch['rrd_acts'].shape == (4, 8) and batch['rrd_acts'].dtype == np.int64


def test_rejects_malformed_episodes_and_empty_sampling():
    buffer = create_buffer(make_args())
    with pytest.raises(ValueError, match='empty'):
        buffer.sample_batch()
    with pytest.raises(ValueError, match='T \\+ 1 observations'):
        buffer.store_episode(np.zeros((5, 3)), np.zeros((5, 2)), np.zeros(5), np.zeros(5))
    with pytest.raises(ValueError, match='buffer_size'):
        buffer.store_episode(np.zeros((1002, 3)), np.zeros((1001, 2)), np.zeros(1001), np.zeros(1001))


def test_memory_check_rejects_absurd_sizes(monkeypatch):
    with pytest.raises(MemoryError, match='--buffer_size'):
        create_buffer(make_args(buffer_size=10**13))
    monkeypatch.setattr(storage, 'mem_available', lambda: 2**30)  # a 1 GiB machine
    atari = atari_args(obs_dims=[84, 84, 4], buffer_size=200_000)
    with pytest.raises(MemoryError, match=r'1,4\d\d,\d{3},\d{3} bytes'):
        create_buffer(atari)
    create_buffer(atari_args(obs_dims=[84, 84, 4], buffer_size=100_000))


# ---- eviction --------------------------------------------------------------------------------------
def test_whole_oldest_episodes_are_evicted():
    np.random.seed(5)
    buffer, episodes = create_buffer(make_args(buffer_size=100)), VectorEpisodes()
    for ep_id in range(4):
        episodes.store(buffer, ep_id, 30)
    assert len(buffer) == 90 and buffer.episodes_held == 3 and buffer.step_counter == 120
    ids, _ = episodes.check_transitions(**buffer.sample_batch(1000))
    assert set(ids.tolist()) == {1, 2, 3}
    episodes.store(buffer, 4, 100)  # exactly the capacity: everything else goes
    ids, _ = episodes.check_transitions(**buffer.sample_batch(500))
    assert set(ids.tolist()) == {4} and len(buffer) == 100


def test_fifo_with_wraparound_keeps_the_newest_episodes_that_fit():
    np.random.seed(6)
    buffer, episodes = create_buffer(make_args(buffer_size=100, alg='rrd')), VectorEpisodes()
    lengths = np.random.randint(10, 31, size=60)
    for ep_id, length in enumerate(lengths):
        episodes.store(buffer, ep_id, length)
        fitting = np.cumsum(lengths[ep_id::-1]) <= 100  # newest first
        assert len(buffer) == lengths[ep_id::-1][fitting].sum() <= 100
        batch = buffer.sample_batch(200)
        ids, _ = episodes.check_transitions(batch['obs'], batch['obs_next'], batch['acts'], batch['rews'], batch['done'])
        assert set(ids.tolist()) <= set(range(ep_id - fitting.sum() + 1, ep_id + 1))
        episodes.check_transitions(batch['rrd_obs'], batch['rrd_obs_next'], batch['rrd_acts'])


def test_short_episodes_exhaust_the_slot_reserve_before_the_capacity():
    """Each episode costs one slot more than its steps; tiny episodes may hold fewer than
    buffer_size transitions, but sampling stays correct."""
    np.random.seed(7)
    buffer, episodes = create_buffer(make_args(buffer_size=100)), VectorEpisodes()
    for ep_id in range(200):
        episodes.store(buffer, ep_id, 1)
    assert buffer.storage.slots_held <= buffer.storage.slots and 50 <= len(buffer) < 100
    ids, _ = episodes.check_transitions(**buffer.sample_batch(300))
    assert ids.min() >= 200 - len(buffer)


def test_bookkeeping_arrays_grow_and_compact():
    storage = EpisodeStorage(1000, 2000, (1,), np.float32, 1, (), np.int64)
    for ep_id in range(500):
        storage.add_frames(np.full((3, 1), ep_id, np.float32), np.zeros(2, np.int64), np.full(2, ep_id, np.float32),
                           np.zeros(2, bool))
    np.testing.assert_array_equal(storage.ep_ret, 2.0 * np.arange(0, 500))
    for ep_id in range(500, 2000):
        storage.add_frames(np.full((3, 1), ep_id, np.float32), np.zeros(2, np.int64), np.full(2, ep_id, np.float32),
                           np.zeros(2, bool))
    held = storage.episodes_held
    np.testing.assert_array_equal(storage.ep_ret, 2.0 * np.arange(2000 - held, 2000))
    assert len(storage._meta['len']) <= 4 * held


# ---- RRD ---------------------------------------------------------------------------------------------
def test_rrd_batch_targets_are_mean_episode_rewards():
    np.random.seed(8)
    buffer = create_buffer(make_args(alg='rrd', rrd_batch_size=64, rrd_sample_size=8, rrd_bias_correction=True))
    episodes = VectorEpisodes()
    for ep_id, length in enumerate([3, 8, 20, 1]):
        episodes.store(buffer, ep_id, length)
    batch = buffer.sample_batch()
    assert batch['rrd_obs'].shape == batch['rrd_obs_next'].shape == (8, 8, 3)
    assert batch['rrd_acts'].shape == (8, 8, 2)
    assert batch['rrd_rews'].shape == batch['rrd_var_coef'].shape == (8, 1)
    ids, _ = episodes.check_transitions(batch['rrd_obs'], batch['rrd_obs_next'], batch['rrd_acts'])
    assert (ids == ids[:, :1]).all()  # one episode per row
    for row, ep_id in enumerate(ids[:, 0]):
        rews = episodes.stored[ep_id]['rews']
        np.testing.assert_allclose(batch['rrd_rews'][row, 0], rews.sum(dtype=np.float64) / len(rews), rtol=1e-6)


def test_rrd_variance_coefficients():
    np.random.seed(9)
    buffer = create_buffer(make_args(alg='rrd', rrd_batch_size=400, rrd_sample_size=4, rrd_bias_correction=True))
    episodes = VectorEpisodes()
    for ep_id, length in enumerate([1, 2, 4, 10]):
        episodes.store(buffer, ep_id, length)
    batch = buffer.sample_batch()
    lengths = np.array([1, 2, 4, 10])[batch['rrd_obs'][:, 0, 0].astype(int)]
    expected = {1: 0.0, 2: 1.0, 4: 0.0, 10: 0.6}  # T = 1; K > T; K = T; K < T
    np.testing.assert_allclose(batch['rrd_var_coef'][:, 0], [expected[t] for t in lengths], atol=1e-7)
    assert set(lengths.tolist()) == {1, 2, 4, 10}
    buffer.bias_correction = False
    assert 'rrd_var_coef' not in buffer.sample_batch()


def test_rrd_draws_without_replacement_when_k_fits_and_with_replacement_otherwise():
    np.random.seed(10)
    k = 8
    lengths = np.array([8, 9, 50, 3, 1, 5] * 200)
    steps = draw_episode_steps(lengths, k, np.random)
    assert steps.shape == (len(lengths), k)
    assert (steps >= 0).all() and (steps < lengths[:, None]).all()
    fits = lengths >= k
    assert all(len(set(row)) == k for row in steps[fits])
    for length in (3, 5):  # with replacement: every step appears, uniformly
        counts = np.bincount(steps[lengths == length].ravel(), minlength=length)
        assert counts.min() > 0.8 * counts.mean()
    counts = np.bincount(steps[lengths == 50].ravel(), minlength=50)  # a uniform subset
    assert counts.min() > 0.5 * counts.mean() and counts.max() < 1.5 * counts.mean()
    assert (steps[lengths == 8] == np.arange(8)).all(axis=1).sum() < 200  # not always in order...
    assert (np.sort(steps[lengths == 8], axis=1) == np.arange(8)).all()  # ...but every step once


def test_rrd_episodes_are_drawn_proportionally_to_length():
    np.random.seed(11)
    buffer = create_buffer(make_args(alg='rrd', rrd_batch_size=20000, rrd_sample_size=1))
    episodes = VectorEpisodes()
    episodes.store(buffer, 0, 10)
    episodes.store(buffer, 1, 90)
    ids = buffer.sample_batch(1)['rrd_obs'][:, 0, 0]
    assert abs(ids.mean() - 0.9) < 0.01


# ---- IRCR --------------------------------------------------------------------------------------------
def test_ircr_rewards_are_normalised_returns():
    np.random.seed(12)
    buffer, episodes = create_buffer(make_args(alg='ircr')), VectorEpisodes()
    returns = {0: 2.0, 1: -3.0, 2: 7.0}
    for ep_id, ret in returns.items():
        episodes.store(buffer, ep_id, 5, rews=[0, 0, 0, 0, ret])
    batch = buffer.sample_batch(400)
    check_batch_format(batch, 400, (3,))
    ids, _ = episodes.check_transitions(batch['obs'], batch['obs_next'], batch['acts'], done=batch['done'])
    expected = (np.array([returns[i] for i in ids]) + 3.0) / 10.0
    np.testing.assert_allclose(batch['rews'][:, 0], expected, rtol=1e-6)


def test_ircr_equal_returns_give_zero_rewards():
    np.random.seed(13)
    buffer, episodes = create_buffer(make_args(alg='ircr')), VectorEpisodes()
    episodes.store(buffer, 0, 5, rews=np.ones(5))
    assert (buffer.sample_batch(10)['rews'] == 0).all()


def test_ircr_heap_keeps_the_top_ten_after_eviction_and_fills_half_the_batch():
    np.random.seed(14)
    buffer, episodes = create_buffer(make_args(alg='ircr', buffer_size=50)), VectorEpisodes()
    returns = np.random.permutation(40).astype(float)
    for ep_id, ret in enumerate(returns):
        episodes.store(buffer, ep_id, 10, rews=np.r_[np.zeros(9), ret])
    top10 = set(np.argsort(returns)[-10:].tolist())
    fifo = set(range(35, 40))
    assert buffer.heap.episodes_held == 10 and sorted(buffer.heap.ep_ret) == sorted(returns[list(top10)])
    batch = buffer.sample_batch(401)
    ids, _ = episodes.check_transitions(batch['obs'], batch['obs_next'], batch['acts'], done=batch['done'])
    assert set(ids[:201].tolist()) == fifo and set(ids[201:].tolist()) == top10
    held = returns[list(top10 | fifo)]
    expected = (returns[ids] - held.min()) / (held.max() - held.min())
    np.testing.assert_allclose(batch['rews'][:, 0], expected, rtol=1e-6)


# ---- Atari frame stacks -------------------------------------------------------------------------------
def atari_args(**overrides):
    defaults = dict(env_category='atari', obs_dims=[6, 5, 4], frames=4, discrete=True, acts_dims=[6],
                    batch_size=32, rrd_batch_size=32, rrd_sample_size=4)
    return make_args(**{**defaults, **overrides})


class AtariEpisodes:
    """Episodes of random frames whose pixels [0, 0] and [0, 1:3] hold the episode id and the
    frame index (base 256), stacked as the env does (last axis, oldest first)."""

    def __init__(self, frame_shape=(6, 5), frames=4):
        self.frame_shape, self.history, self.stacks = frame_shape, frames, {}

    def store(self, buffer, ep_id, length, ret=0.0):
        frames = np.random.randint(0, 256, size=(length + self.history, *self.frame_shape), dtype=np.uint8)
        index = np.arange(length + self.history)
        frames[:, 0, 0], frames[:, 0, 1], frames[:, 0, 2] = ep_id, index % 256, index // 256
        obs = sliding_window_view(frames, self.history, axis=0)  # [T + 1, *frame, history]
        acts = (ep_id + np.arange(length)) % 6
        buffer.store_episode(obs, acts, np.r_[np.zeros(length - 1), ret], np.zeros(length, bool))
        self.stacks[ep_id] = (obs.copy(), acts)

    def check(self, obs, obs_next, acts):
        last = obs[..., 0, 0, -1].astype(int), obs[..., 0, 1, -1] + 256 * obs[..., 0, 2, -1].astype(int)
        for index in np.ndindex(obs.shape[:-3]):
            stacks, ep_acts = self.stacks[last[0][index]]
            t = last[1][index] - (self.history - 1)
            np.testing.assert_array_equal(obs[index], stacks[t])
            np.testing.assert_array_equal(obs_next[index], stacks[t + 1])
            assert acts[index] == ep_acts[t]
        return last[0], last[1] - (self.history - 1)


def test_atari_stacks_are_rebuilt_exactly_across_boundaries_and_eviction():
    np.random.seed(15)
    buffer, episodes = create_buffer(atari_args(alg='rrd', buffer_size=60)), AtariEpisodes()
    seen_first_steps = 0
    for ep_id in range(40):
        episodes.store(buffer, ep_id, np.random.randint(1, 25))
        batch = buffer.sample_batch(64)
        check_batch_format(batch, 64, (6, 5, 4), np.uint8, (), np.int64)
        ids, steps = episodes.check(batch['obs'], batch['obs_next'], batch['acts'])
        seen_first_steps += (steps < 3).sum()
        assert len(buffer) <= 60
        assert batch['rrd_obs'].shape == (8, 4, 6, 5, 4) and batch['rrd_obs'].dtype == np.uint8
        episodes.check(batch['rrd_obs'], batch['rrd_obs_next'], batch['rrd_acts'])
    assert seen_first_steps > 100


def test_atari_full_size_frames_and_storage_cost():
    np.random.seed(16)
    buffer = create_buffer(atari_args(obs_dims=[84, 84, 4], buffer_size=2000))
    episodes = AtariEpisodes((84, 84))
    for ep_id in range(5):
        episodes.store(buffer, ep_id, 500)
    episodes.check(**{key: value for key, value in buffer.sample_batch(32).items() if key in ('obs', 'obs_next', 'acts')})
    frame_and_fields = 84 * 84 + 8 + 4 + 1
    assert buffer.nbytes / buffer.storage.capacity < 1.05 * frame_and_fields


def test_atari_ircr_heap_stacks():
    np.random.seed(17)
    buffer, episodes = create_buffer(atari_args(alg='ircr', buffer_size=40)), AtariEpisodes()
    for ep_id in range(15):
        episodes.store(buffer, ep_id, 10, ret=float(ep_id % 12))
    batch = buffer.sample_batch(40)
    ids, _ = episodes.check(batch['obs'], batch['obs_next'], batch['acts'])
    assert set(ids[20:].tolist()) <= {2, 3, 4, 5, 6, 7, 8, 9, 10, 11} and set(ids[:20].tolist()) <= {11, 12, 13, 14}


def test_atari_rejects_inconsistent_stacks():
    buffer = create_buffer(atari_args())
    obs = np.random.randint(0, 256, size=(4, 6, 5, 4), dtype=np.uint8)
    with pytest.raises(ValueError, match='overlap'):
        buffer.store_episode(obs, [0, 1, 2], [0, 0, 1], [0, 0, 1])
