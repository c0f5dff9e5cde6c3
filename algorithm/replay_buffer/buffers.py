"""Replay buffers: plain uniform replay, RRD episode sampling and IRCR (docs/algorithms.md sections 7-9).

Vector and Atari observations differ only in how `EpisodeStorage` lays out frames, so each
sampling mode is written once. Randomness comes from `rng`, which defaults to the numpy global
RNG (`np.random`) so that the trainer's single `np.random.seed` makes runs reproducible; any
object with the `np.random.RandomState` API (`randint`, `random`) can replace it.
"""
import math
import os

import numpy as np

from algorithm.replay_buffer.storage import EpisodeStorage


def reserve_slots(capacity, history, fraction):
    """Ring slots beyond `capacity` for the h extra frames of each held episode.

    With R reserve slots, `capacity` transitions are held exactly while held episodes average
    at least capacity * h / R steps; the floor of 16 episodes keeps small buffers exact.
    """
    return max(math.ceil(fraction * capacity), 16 * history)


def draw_episode_steps(lengths, k, rng):
    """[E, k] step indices: per episode, k uniform draws from range(T), without replacement
    when k <= T and with replacement otherwise.

    Without replacement is vectorised with random sort keys: the k smallest of T uniform keys
    index a uniform k-subset (keys of the steps past an episode's end are pushed above 1).
    """
    steps = np.empty((len(lengths), k), np.int64)
    short = lengths < k
    if short.any():
        steps[short] = rng.randint(0, lengths[short, None], size=(short.sum(), k))
    if not short.all():
        long_lengths = lengths[~short]
        keys = rng.random((len(long_lengths), long_lengths.max()))
        keys[np.arange(keys.shape[1]) >= long_lengths[:, None]] = 2.0
        steps[~short] = np.argpartition(keys, k - 1, axis=1)[:, :k]
    return steps


def variance_coefficients(lengths, k):
    """Bias-correction coefficient c per episode (docs/algorithms.md section 7): 1 - k/T when k <= T, 1 when
    k > T, 0 when T = 1 (a one-step episode's reward is pinned exactly by its return)."""
    coef = np.where(k <= lengths, 1.0 - k / lengths, 1.0)
    return np.where(lengths == 1, 0.0, coef).astype(np.float32)


class ReplayBuffer:
    """Uniform transition replay over whole episodes (the basis algorithms' buffer).

    Vector observations are stored as float32; Atari (`env_category == 'atari'`) observations as
    uint8 single frames, rebuilt into [84, 84, frames] stacks on sampling (left uint8; the agent
    scales them). Stacks are returned as strided (not C-contiguous) views, see
    `EpisodeStorage._obs_at`. Discrete actions are int64 indices [B], continuous ones float32
    [B, *acts].
    """

    VECTOR_RESERVE = 0.05  # held exactly down to episodes of 20 steps; within the 10% storage target
    ATARI_RESERVE = 0.02  # 4-frame stacks: held exactly down to 200-step games; within 5%

    def __init__(self, args, rng=None):
        self.rng = np.random if rng is None else rng
        self.batch_size = args.batch_size
        if args.env_category == 'atari':
            *frame_shape, history = args.obs_dims
            if history != args.frames:
                raise ValueError(f'Atari observations {args.obs_dims} should stack --frames {args.frames} frames')
            self.obs_dtype, reserve = np.uint8, self.ATARI_RESERVE
        else:
            frame_shape, history = args.obs_dims, 1
            self.obs_dtype, reserve = np.float32, self.VECTOR_RESERVE
        self.obs_shape = tuple(args.obs_dims)
        self.acts_shape = () if args.discrete else tuple(args.acts_dims)
        self.acts_dtype = np.int64 if args.discrete else np.float32
        self.layout = dict(frame_shape=frame_shape, frame_dtype=self.obs_dtype, history=history,
                           acts_shape=self.acts_shape, acts_dtype=self.acts_dtype)
        self.storage = EpisodeStorage(args.buffer_size,
                                      args.buffer_size + reserve_slots(args.buffer_size, history, reserve),
                                      **self.layout)
        self.step_counter = 0  # env steps ever stored
        self.ep_counter = 0  # episodes ever stored

    @property
    def steps_held(self):
        return self.storage.steps_held

    @property
    def episodes_held(self):
        return self.storage.episodes_held

    def __len__(self):
        return self.storage.steps_held

    @property
    def nbytes(self):
        return self.storage.nbytes

    def store_episode(self, obs, acts, rews, done):
        """Store one finished episode of T steps: obs has T + 1 entries (the last is the final
        obs_next); acts, rews and done (termination, false at the time cap) have T."""
        obs = np.asarray(obs, self.obs_dtype)
        acts = np.asarray(acts, self.acts_dtype).reshape(-1, *self.acts_shape)
        rews = np.asarray(rews, np.float32).reshape(-1)
        done = np.asarray(done, np.bool_).reshape(-1)
        n_steps = len(acts)
        if n_steps == 0 or obs.shape != (n_steps + 1, *self.obs_shape) or not len(rews) == len(done) == n_steps:
            raise ValueError(f'an episode needs T >= 1 steps, T + 1 observations of shape {self.obs_shape} '
                             f'and T acts, rews, done; got obs {obs.shape}, acts {acts.shape}, '
                             f'rews {rews.shape}, done {done.shape}')
        self.storage.add_frames(self.storage.frames_of(obs), acts, rews, done)
        self.step_counter += n_steps
        self.ep_counter += 1

    def sample_batch(self, batch_size=None):
        """`batch_size` (default args.batch_size) uniformly drawn stored transitions."""
        n = self.batch_size if batch_size is None else batch_size
        return self.storage.transitions(*self.storage.sample_steps(n, self.rng))

    def sample(self, batch_size=None):
        return self.sample_batch(batch_size)

    def keep_on_device(self, device):
        """Gather batches on a torch device from a copy of the stored transitions there
        (`--buffer_on_device`; EpisodeStorage.keep_on_device)."""
        self.storage.keep_on_device(device)

    # ---- checkpoints ------------------------------------------------------------------------------
    def save(self, folder):
        """Write the held transitions to `folder` (see `EpisodeStorage.save`; ~100 bytes per
        MuJoCo transition, ~7 KB per Atari frame); returns the scalars `load` needs."""
        os.makedirs(folder, exist_ok=True)
        state = {'step_counter': self.step_counter, 'ep_counter': self.ep_counter,
                 'storage': self.storage.save(folder)}
        if self.rng is not np.random:  # the global RNG is saved with the others by the caller
            state['rng'] = self.rng.get_state()
        return state

    def load(self, folder, state):
        self.storage.load(folder, state['storage'])
        self.step_counter, self.ep_counter = state['step_counter'], state['ep_counter']
        if 'rng' in state:
            self.rng.set_state(state['rng'])


class RRDReplayBuffer(ReplayBuffer):
    """Adds the reward-regression batch (docs/algorithms.md section 7): E = rrd_batch_size // rrd_sample_size
    episodes drawn proportionally to length, K = rrd_sample_size steps from each:
    rrd_obs [E, K, *obs], rrd_obs_next, rrd_acts [E, K, *acts], rrd_rews [E, 1] = R_ep / T and,
    with bias correction, rrd_var_coef [E, 1]."""

    def __init__(self, args, rng=None):
        super().__init__(args, rng)
        self.rrd_sample_size = args.rrd_sample_size
        self.rrd_episodes = args.rrd_batch_size // args.rrd_sample_size
        if self.rrd_episodes < 1:
            raise ValueError(f'--rrd_batch_size ({args.rrd_batch_size}) must be at least '
                             f'--rrd_sample_size ({args.rrd_sample_size})')
        self.bias_correction = args.rrd_bias_correction

    def sample_batch(self, batch_size=None):
        batch = super().sample_batch(batch_size)
        storage, k = self.storage, self.rrd_sample_size
        episodes, _ = storage.sample_steps(self.rrd_episodes, self.rng)
        lengths = storage.ep_len[episodes]
        anchors = storage.anchors(episodes[:, None], draw_episode_steps(lengths, k, self.rng))
        batch['rrd_obs'], batch['rrd_obs_next'] = storage.obs_pair(anchors)
        batch['rrd_acts'] = storage.gather('acts', anchors)
        batch['rrd_rews'] = (storage.ep_ret[episodes] / lengths).astype(np.float32)[:, None]
        if self.bias_correction:
            batch['rrd_var_coef'] = variance_coefficients(lengths, k)[:, None]
        return batch


class IRCRReplayBuffer(ReplayBuffer):
    """IRCR (docs/algorithms.md section 8): every sampled transition's reward is its episode's return, min-max
    normalised over all episodes held (FIFO buffer and heap); when they all have the same return
    the reward is 0. Half of each batch (the first ceil(B/2) rows) comes from the FIFO buffer,
    half from a heap of the `HEAP_SIZE` highest-return episodes ever stored, kept as copies in a
    small storage of its own that FIFO eviction does not touch (ties keep the earlier episode).
    """

    HEAP_SIZE = 10

    def __init__(self, args, rng=None):
        super().__init__(args, rng)
        self.heap = None  # EpisodeStorage sized to its episodes, rebuilt when one enters
        self.ret_min = self.ret_max = 0.0

    def store_episode(self, obs, acts, rews, done):
        super().store_episode(obs, acts, rews, done)
        self._update_heap()
        returns = np.concatenate([self.storage.ep_ret, self.heap.ep_ret])
        self.ret_min, self.ret_max = returns.min(), returns.max()

    def _update_heap(self):
        newest = self.storage.episodes_held - 1
        kept = [] if self.heap is None else list(range(self.heap.episodes_held))
        if len(kept) == self.HEAP_SIZE:
            worst = int(np.argmin(self.heap.ep_ret))
            if self.storage.ep_ret[newest] <= self.heap.ep_ret[worst]:
                return
            kept.remove(worst)
        episodes = [self.heap.episode(i) for i in kept] + [self.storage.episode(newest)]
        n_steps = sum(len(acts) for _, acts, _, _ in episodes)
        heap = EpisodeStorage(n_steps, n_steps + len(episodes) * self.layout['history'], **self.layout)
        for episode in episodes:
            heap.add_frames(*episode)
        self.heap = heap

    def save(self, folder):
        state = super().save(folder)
        state['heap'] = self.heap.save(folder, prefix='heap_') if self.heap is not None else None
        state['ret_range'] = (self.ret_min, self.ret_max)
        return state

    def load(self, folder, state):
        super().load(folder, state)
        if state['heap'] is not None:
            self.heap = EpisodeStorage(state['heap']['capacity'], state['heap']['slots'], **self.layout)
            self.heap.load(folder, state['heap'], prefix='heap_')
        self.ret_min, self.ret_max = state['ret_range']

    def normalised_returns(self, returns):
        span = self.ret_max - self.ret_min
        if span == 0:
            return np.zeros_like(returns, np.float32)
        return ((returns - self.ret_min) / span).astype(np.float32)

    def sample_batch(self, batch_size=None):
        n = self.batch_size if batch_size is None else batch_size
        parts = []
        for storage, size in ((self.storage, n - n // 2), (self.heap, n // 2)):
            episodes, steps = storage.sample_steps(size, self.rng)
            part = storage.transitions(episodes, steps)
            part['rews'] = self.normalised_returns(storage.ep_ret[episodes])[:, None]
            parts.append(part)
        return {key: np.concatenate([part[key] for part in parts]) for key in parts[0]}
