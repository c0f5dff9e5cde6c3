"""The replay ring's copy on a torch device, for PyTorch's opt-in `--buffer_on_device`.

EpisodeStorage keeps its numpy ring as the storage of record (checkpoints, episode copies) and
computes every batch's slot indices on the host, as always, so draws are those of the numpy
buffer. With a device ring the gather happens on the device instead: per batch only the indices
cross (a few KB), not the observations (45 KB for a HalfCheetah batch, 1.8 MB of frames for an
Atari one), and the batch arrives as device tensors that the agent takes without a copy.
"""
import numpy as np
import torch

from algorithm.replay_buffer.storage import RING_FIELDS, write_wrapped


class DeviceRing:
    """Copies of a storage's ring arrays on `device`; `done` is kept as float32, as batches carry it.
    On the CPU the copies share memory with the numpy rings (`done` aside)."""

    def __init__(self, storage, device):
        self.storage, self.device = storage, torch.device(device)
        if self.device.type == 'cuda':
            free, _ = torch.cuda.mem_get_info(self.device)
            needed = sum(getattr(storage, name).nbytes for name in RING_FIELDS) + 3 * storage.done.nbytes
            if needed > free:
                raise MemoryError(f'--buffer_on_device needs {needed / 2**30:.2f} GiB on {self.device} but '
                                  f'{free / 2**30:.2f} GiB are free; use a smaller --buffer_size or drop '
                                  '--buffer_on_device')
        self.refresh()

    def refresh(self):
        """Copy the whole numpy ring to the device (after the storage was loaded)."""
        self.rings = {name: self.to_device(getattr(self.storage, name)) for name in RING_FIELDS}

    def to_device(self, values):
        tensor = torch.as_tensor(np.ascontiguousarray(values), device=self.device)
        return tensor.float() if tensor.dtype == torch.bool else tensor

    def put(self, name, start, head, values):
        """Write `values` from slot `start`, wrapping after `head` of them, as the numpy ring."""
        write_wrapped(self.rings[name], start, head, self.to_device(values))

    def gather(self, name, slots):
        """Rows `slots` (any shape) of ring `name`: one index_select, which copies whole rows
        (advanced indexing with a 2-D index was 15x slower for frames on the CPU)."""
        ring = self.rings[name]
        index = torch.as_tensor(slots, device=self.device).flatten()
        return ring.index_select(0, index).view(*slots.shape, *ring.shape[1:])
