"""Replay buffers shared by both backends (numpy; PyTorch can keep a copy on its device, device_ring_torch.py);
see docs/design.md and docs/algorithms.md section 9."""
from algorithm.replay_buffer.buffers import IRCRReplayBuffer, ReplayBuffer, RRDReplayBuffer
from algorithm.replay_buffer.storage import EpisodeStorage

__all__ = ['create_buffer', 'ReplayBuffer', 'RRDReplayBuffer', 'IRCRReplayBuffer', 'EpisodeStorage']


def create_buffer(args, rng=None):
    """The buffer for `args.alg` ('rrd', 'ircr', anything else plain); `rng` defaults to np.random."""
    cls = {'rrd': RRDReplayBuffer, 'ircr': IRCRReplayBuffer}.get(args.alg, ReplayBuffer)
    return cls(args, rng)
