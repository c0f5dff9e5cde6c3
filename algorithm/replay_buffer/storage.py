"""Episode-contiguous ring storage: the one place that lays out, evicts and gathers transitions.

Every buffer (vector or Atari frame-stack; plain, RRD or IRCR sampling) is built on
`EpisodeStorage`, which differs between observation kinds only by the frame shape, dtype and
`history` (frames per observation). Numpy only, so both backends share it; with PyTorch's opt-in
`--buffer_on_device` the ring also has a copy on the torch device (device_ring_torch.py), where
batches are gathered.
"""
import math
import os

import numpy as np

RING_FIELDS = ('frames', 'acts', 'rews', 'done')


def write_wrapped(ring, start, head, values):
    """Write `values` into `ring` from slot `start`: the first `head` of them up to the ring's end,
    the rest from slot 0 (numpy arrays and torch tensors alike)."""
    ring[start:start + head] = values[:head]
    ring[:len(values) - head] = values[head:]


def mem_available():
    """MemAvailable from /proc/meminfo in bytes, or None where that file does not exist."""
    try:
        with open('/proc/meminfo') as meminfo:
            for line in meminfo:
                if line.startswith('MemAvailable:'):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def check_memory(nbytes, what):
    """Fail before allocating: numpy allocates lazily, so an oversized buffer would otherwise
    only run out of memory (and be OOM-killed) hours later, while it fills."""
    available = mem_available()
    if available is not None and nbytes > available:
        raise MemoryError(
            f'{what} needs {nbytes:,} bytes ({nbytes / 2**30:.2f} GiB) but only {available:,} bytes '
            f'({available / 2**30:.2f} GiB) are available; use a smaller --buffer_size')


class EpisodeStorage:
    """Whole episodes, FIFO, in one preallocated ring of frame slots.

    An episode of T steps takes T + h consecutive slots (modulo the ring), h = `history`: the
    h - 1 frames before the last frame of its first observation, then the last frame of each of
    its T + 1 observations. Observation t is the window of slots [a - h + 1, a] with anchor
    a = start + h - 1 + t, and obs_next is the same window shifted by one slot, so every frame is
    stored once. Vector observations are the case h = 1 (the whole observation is the frame), so
    an episode costs one observation more than its transitions. acts/rews/done of step t live at
    slot a; the fields of an episode's last slot are unused.

    `capacity` bounds the transitions held. The ring has `slots` >= capacity + h slots; the h
    extra slots per episode come out of the reserve beyond `capacity`, so when held episodes are
    very short the ring fills first and fewer than `capacity` transitions are held. Either way
    the oldest whole episodes are evicted.

    Per-episode bookkeeping (first slot, length, return, global index of its first transition)
    lives in small arrays that grow on demand; the held episodes are `_meta[...][lo:hi]`, oldest
    first, and the first-transition indices are increasing, so a uniformly drawn transition is
    mapped to its episode with one `searchsorted`.
    """

    _META_DTYPES = {'start': np.int64, 'len': np.int64, 'first': np.int64, 'ret': np.float64}

    def __init__(self, capacity, slots, frame_shape, frame_dtype, history, acts_shape, acts_dtype):
        if slots < capacity + history:
            raise ValueError(f'{slots} slots cannot hold {capacity} transitions with history {history}')
        self.capacity, self.slots, self.history = capacity, slots, history
        frame_shape, acts_shape = tuple(frame_shape), tuple(acts_shape)
        slot_bytes = (math.prod(frame_shape) * np.dtype(frame_dtype).itemsize
                      + math.prod(acts_shape) * np.dtype(acts_dtype).itemsize
                      + np.dtype(np.float32).itemsize + np.dtype(np.bool_).itemsize)
        check_memory(slots * slot_bytes, f'a replay buffer of {capacity:,} transitions')
        self.frames = np.zeros((slots, *frame_shape), frame_dtype)
        self.acts = np.zeros((slots, *acts_shape), acts_dtype)
        self.rews = np.zeros(slots, np.float32)
        self.done = np.zeros(slots, np.bool_)
        self._meta = {key: np.zeros(64, dtype) for key, dtype in self._META_DTYPES.items()}
        self._lo = self._hi = 0
        self._window = np.arange(-history + 1, 1)  # slots of an observation relative to its anchor
        self.steps_held = 0
        self.slots_held = 0
        self._write = 0  # first free slot
        self._next_first = 0  # global index of the next transition stored
        self.device_ring = None  # the ring's copy on a torch device (keep_on_device)

    # ---- bookkeeping views (held episodes, oldest first) ------------------------------------------
    @property
    def episodes_held(self):
        return self._hi - self._lo

    @property
    def ep_start(self):
        return self._meta['start'][self._lo:self._hi]

    @property
    def ep_len(self):
        return self._meta['len'][self._lo:self._hi]

    @property
    def ep_ret(self):
        return self._meta['ret'][self._lo:self._hi]

    @property
    def nbytes(self):
        arrays = (self.frames, self.acts, self.rews, self.done, *self._meta.values())
        return sum(array.nbytes for array in arrays)

    # ---- storing ----------------------------------------------------------------------------------
    def frames_of(self, obs):
        """The T + h frames of an episode from its T + 1 observations (stacks on the last axis)."""
        if self.history == 1:
            return obs
        if not np.array_equal(obs[1:, ..., :-1], obs[:-1, ..., 1:]):
            raise ValueError('consecutive frame stacks of an episode must overlap: obs[t + 1][..., :-1] '
                             'should equal obs[t][..., 1:]')
        return np.concatenate([np.moveaxis(obs[0, ..., :-1], -1, 0), obs[..., -1]])

    def add_frames(self, frames, acts, rews, done):
        """Append one episode given as its frames (see `frames_of`), evicting the oldest as needed."""
        n_steps = len(acts)
        if n_steps > self.capacity:
            raise ValueError(f'an episode of {n_steps} steps does not fit a replay buffer of '
                             f'{self.capacity} transitions; raise --buffer_size')
        while self.steps_held + n_steps > self.capacity or self.slots_held + n_steps + self.history > self.slots:
            self._evict_oldest()
        start = self._write
        self._put(start, frames=frames)
        self._put((start + self.history - 1) % self.slots, acts=acts, rews=rews, done=done)
        self._append_meta(start=start, len=n_steps, first=self._next_first,
                          ret=np.sum(rews, dtype=np.float64))
        self._write = (start + n_steps + self.history) % self.slots
        self.steps_held += n_steps
        self.slots_held += n_steps + self.history
        self._next_first += n_steps

    def _put(self, start, **fields):
        """Copy each field's values into its ring from slot `start`, wrapping at the end (and into
        the device ring)."""
        for name, values in fields.items():
            head = min(len(values), self.slots - start)
            write_wrapped(getattr(self, name), start, head, values)
            if self.device_ring is not None:
                self.device_ring.put(name, start, head, values)

    def _evict_oldest(self):
        n_steps = self._meta['len'][self._lo]
        self._lo += 1
        self.steps_held -= n_steps
        self.slots_held -= n_steps + self.history

    def _append_meta(self, **values):
        """Append at `hi`; when the arrays are full, move the held rows to the front, growing the
        arrays when they are more than half full (amortised O(1) per episode)."""
        if self._hi == len(self._meta['len']):
            held = self._hi - self._lo
            for key, array in self._meta.items():
                moved = np.zeros(max(len(array), 2 * held), array.dtype)
                moved[:held] = array[self._lo:self._hi]
                self._meta[key] = moved
            self._lo, self._hi = 0, held
        for key, value in values.items():
            self._meta[key][self._hi] = value
        self._hi += 1

    def keep_on_device(self, device):
        """Keep a copy of the ring on a torch `device` and gather batches there (opt-in
        `--buffer_on_device`, PyTorch only): a batch then crosses to the device as its slot
        indices instead of its observations. The numpy ring stays the storage of record."""
        from algorithm.replay_buffer.device_ring_torch import DeviceRing
        self.device_ring = DeviceRing(self, device)

    # ---- sampling ---------------------------------------------------------------------------------
    def sample_steps(self, n, rng):
        """n transitions drawn uniformly from those held: (episode index, step index), arrays [n].

        Episode indices point into the held-episode views (`ep_len`, ...) and stay valid until
        the next `add_frames`. The episode of a uniform transition is drawn with probability
        proportional to its length, which is also what RRD's episode draw needs.
        """
        if self.steps_held == 0:
            raise ValueError('cannot sample from an empty replay buffer')
        first = self._meta['first'][self._lo:self._hi]
        steps = first[0] + rng.randint(0, self.steps_held, size=n)
        episodes = np.searchsorted(first, steps, side='right') - 1
        return episodes, steps - first[episodes]

    def anchors(self, episodes, steps):
        """Ring slots of the given steps (broadcasting episodes against steps)."""
        return (self.ep_start[episodes] + (self.history - 1) + steps) % self.slots

    def obs_pair(self, anchors):
        """(obs, obs_next) at the given anchor slots, shaped [*anchors.shape, *obs_dims]."""
        following = anchors + 1
        following[following == self.slots] = 0
        return self._obs_at(anchors), self._obs_at(following)

    def gather(self, name, slots):
        """Ring `name` ('frames', 'acts', 'rews', 'done') at the given slots, `done` as float32 (as
        batches carry it): a numpy array, or a tensor on the device with a device ring."""
        if self.device_ring is not None:
            return self.device_ring.gather(name, slots)
        values = getattr(self, name)[slots]
        return values.astype(np.float32) if name == 'done' else values

    def _obs_at(self, anchors):
        """Stacks are channels-last views of a channels-first gather: the transposing copy is left
        to the consumer (the torch agent makes it on the bytes, TF's feed makes it), so sampling
        pays only for the gather."""
        if self.history == 1:
            return self.gather('frames', anchors)
        window = self.gather('frames', (anchors[..., None] + self._window) % self.slots)  # [..., h, *frame]
        if self.device_ring is not None:
            return window.movedim(anchors.ndim, -1)
        return np.moveaxis(window, anchors.ndim, -1)

    def transitions(self, episodes, steps):
        """The basis-algorithm batch for the given steps: obs, obs_next, acts, rews [B, 1], done [B, 1]."""
        anchors = self.anchors(episodes, steps)
        obs, obs_next = self.obs_pair(anchors)
        return {'obs': obs, 'obs_next': obs_next, 'acts': self.gather('acts', anchors),
                'rews': self.gather('rews', anchors)[:, None], 'done': self.gather('done', anchors)[:, None]}

    def episode(self, index):
        """Copies of one held episode's (frames, acts, rews, done), the arguments of `add_frames`."""
        n_steps = self.ep_len[index]
        slots = (self.ep_start[index] + np.arange(n_steps + self.history)) % self.slots
        fields = slots[self.history - 1:-1]
        return self.frames[slots], self.acts[fields], self.rews[fields], self.done[fields]

    # ---- checkpoints ------------------------------------------------------------------------------
    def save(self, folder, prefix=''):
        """Write the held slots (oldest first) and episode rows as uncompressed .npy files in
        `folder`; returns the scalars `load` needs. Only the filled part is written, through a
        memory map in at most two slices, so even a full Atari ring is never copied in memory."""
        base = int(self.ep_start[0]) if self.episodes_held else 0
        held = int(self.slots_held)  # a numpy int after evictions: .npy headers want a Python int
        head = min(held, self.slots - base)
        for name in RING_FIELDS:
            ring = getattr(self, name)
            path = os.path.join(folder, f'{prefix}{name}.npy')
            if held == 0:
                np.save(path, ring[:0])
                continue
            rows = np.lib.format.open_memmap(path, mode='w+', dtype=ring.dtype, shape=(held, *ring.shape[1:]))
            rows[:head] = ring[base:base + head]
            rows[head:] = ring[:held - head]
            rows.flush()
            del rows
        meta = {key: array[self._lo:self._hi].copy() for key, array in self._meta.items()}
        meta['start'] = (meta['start'] - base) % self.slots
        np.savez(os.path.join(folder, f'{prefix}episodes.npz'), **meta)
        return {'capacity': self.capacity, 'slots': self.slots, 'steps_held': int(self.steps_held),
                'slots_held': held, 'next_first': int(self._next_first)}

    def load(self, folder, scalars, prefix=''):
        """Refill this (empty, same-sized) storage from what `save` wrote; the held slots land at
        the start of the ring, which changes no sample: draws depend on the episode rows only."""
        if (scalars['capacity'], scalars['slots']) != (self.capacity, self.slots):
            raise ValueError(f'the saved replay buffer holds {scalars["capacity"]} transitions in '
                             f'{scalars["slots"]} slots, this one {self.capacity} in {self.slots}')
        for name in RING_FIELDS:
            rows = np.load(os.path.join(folder, f'{prefix}{name}.npy'), mmap_mode='r')
            getattr(self, name)[:len(rows)] = rows
        with np.load(os.path.join(folder, f'{prefix}episodes.npz')) as meta:
            held = len(meta['len'])
            self._meta = {key: np.zeros(max(64, 2 * held), dtype) for key, dtype in self._META_DTYPES.items()}
            for key in self._meta:
                self._meta[key][:held] = meta[key]
        self._lo, self._hi = 0, held
        self.steps_held, self.slots_held = scalars['steps_held'], scalars['slots_held']
        self._next_first = scalars['next_first']
        self._write = self.slots_held % self.slots
        if self.device_ring is not None:
            self.device_ring.refresh()
