"""PyTorch's opt-in --buffer_on_device: the replay ring's copy on the torch device gives the numpy
buffer's batches exactly (same draws, same values, as device tensors), across ring wraparound,
eviction, Atari frame stacks and a checkpoint round trip. On torch's CPU device by default (where
the copy shares the numpy ring's memory, `done` aside); `pytest --torch-device cuda` runs the same
checks with the ring copied to a GPU."""
import numpy as np
import pytest
import torch

from algorithm.replay_buffer import create_buffer
from test_buffers import AtariEpisodes, VectorEpisodes, atari_args, make_args

DTYPES = {torch.float32: np.float32, torch.uint8: np.uint8, torch.int64: np.int64}
CONFIGS = {
    'vector rrd': (lambda: make_args(alg='rrd', buffer_size=300), VectorEpisodes, (5, 40)),
    'vector sac': (lambda: make_args(buffer_size=300), VectorEpisodes, (5, 40)),
    'atari rrd': (lambda: atari_args(alg='rrd', buffer_size=60), AtariEpisodes, (1, 25)),
}


def twin_buffers(config, seed, on_device_from, device):
    """A numpy buffer and one with a device ring from episode `on_device_from` on, both filled with
    the same 30 episodes (enough to wrap the ring and evict) and seeded alike."""
    make, episodes_cls, (shortest, longest) = CONFIGS[config]
    buffers = [create_buffer(make(), np.random.RandomState(seed)) for _ in range(2)]
    lengths = np.random.RandomState(seed).randint(shortest, longest, size=30)
    for buffer in buffers:
        episodes = episodes_cls()
        np.random.seed(seed)  # the episodes' contents
        for ep_id, length in enumerate(lengths):
            if buffer is buffers[1] and ep_id == on_device_from:
                buffer.keep_on_device(device)
            episodes.store(buffer, ep_id, length)
    return buffers


def assert_same_batch(host, gathered, device):
    assert host.keys() == gathered.keys()
    for key, array in host.items():
        tensor = gathered[key]
        if key.startswith(('rrd_rews', 'rrd_var')):  # per-episode scalars stay numpy
            np.testing.assert_array_equal(tensor, array)
            continue
        assert isinstance(tensor, torch.Tensor) and tensor.device.type == device, key
        assert DTYPES[tensor.dtype] == array.dtype and tensor.shape == array.shape, key
        np.testing.assert_array_equal(tensor.cpu().numpy(), array, err_msg=key)


@pytest.mark.parametrize('on_device_from', [0, 12], ids=['from the start', 'after 12 episodes'])
@pytest.mark.parametrize('config', list(CONFIGS))
def test_device_batches_equal_the_numpy_batches(config, on_device_from, torch_device):
    host, on_device = twin_buffers(config, 3, on_device_from, torch_device)
    for _ in range(5):
        assert_same_batch(host.sample_batch(), on_device.sample_batch(), torch_device)


@pytest.mark.parametrize('config', ['vector rrd', 'atari rrd'])
def test_a_loaded_device_buffer_samples_what_the_saved_one_would(config, tmp_path, torch_device):
    host, on_device = twin_buffers(config, 4, 0, torch_device)
    state = on_device.save(str(tmp_path))
    make = CONFIGS[config][0]
    loaded = create_buffer(make(), np.random.RandomState(0))
    loaded.keep_on_device(torch_device)
    loaded.load(str(tmp_path), state)
    for _ in range(3):
        assert_same_batch(host.sample_batch(), loaded.sample_batch(), torch_device)
