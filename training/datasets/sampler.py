"""A DistributedSampler that can start mid-epoch and tells the dataset which epoch it is in.

The order is the stock one (a permutation seeded by seed + epoch, split across ranks), so a run
resumed at (epoch, position) sees exactly the batches the uninterrupted run would have seen.
"""
from __future__ import annotations

from torch.utils.data import DistributedSampler


class ResumableSampler(DistributedSampler):
    def __init__(self, dataset, num_replicas: int, rank: int, shuffle: bool, seed: int, drop_last: bool):
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=shuffle, seed=seed,
                         drop_last=drop_last)
        self.start = 0

    def set_position(self, epoch: int, start: int) -> None:
        """Iterate `epoch` from its `start`-th sample of this rank's share (0 for a fresh epoch)."""
        self.set_epoch(epoch)
        self.start = int(start)

    def __iter__(self):
        indices = list(super().__iter__())[self.start:]
        return iter([(index, self.epoch) for index in indices])

    def __len__(self) -> int:
        return self.num_samples - self.start
