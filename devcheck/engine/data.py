"""Datasets and a DataLoader in PyTorch's shape. Data stays on the host; each batch is gathered
with one fancy-index per field and copied to the device, ahead of time in worker threads when
num_workers > 0 (NumPy indexing and host->device copies release the GIL)."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy

from devcheck.engine import backend
from devcheck.engine.backend import Device, get_device
from devcheck.engine.tensor import Tensor


class Dataset:
    def __getitem__(self, index: int) -> Any:
        raise NotImplementedError

    def __len__(self) -> int:
        raise NotImplementedError


class TensorDataset(Dataset):
    def __init__(self, *arrays: Any):
        self.arrays = [a.numpy() if isinstance(a, Tensor) else numpy.asarray(a) for a in arrays]
        if not self.arrays or len({len(a) for a in self.arrays}) != 1:
            raise ValueError(f"TensorDataset needs arrays of one length, got {[len(a) for a in self.arrays]}")

    def __getitem__(self, index: Any) -> tuple[numpy.ndarray, ...]:
        return tuple(a[index] for a in self.arrays)

    def __len__(self) -> int:
        return len(self.arrays[0])

    def fetch(self, indices: numpy.ndarray) -> tuple[numpy.ndarray, ...]:
        return tuple(a[indices] for a in self.arrays)


class SequentialSampler:
    def __init__(self, length: int):
        self.length = length

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.length))

    def __len__(self) -> int:
        return self.length


class RandomSampler:
    """A fresh permutation each epoch, from the engine's host generator unless one is given."""

    def __init__(self, length: int, generator: numpy.random.Generator | None = None):
        self.length, self.rng = length, generator

    def __iter__(self) -> Iterator[int]:
        return iter((self.rng or backend.generator()).permutation(self.length).tolist())

    def __len__(self) -> int:
        return self.length


class DataLoader:
    def __init__(
        self,
        dataset: Dataset,
        batch_size: int = 1,
        shuffle: bool = False,
        sampler: Any = None,
        drop_last: bool = False,
        num_workers: int = 0,
        device: str | Device = "cpu",
    ):
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size={batch_size!r}: expected a positive integer")
        if not isinstance(num_workers, int) or num_workers < 0:
            raise ValueError(f"num_workers={num_workers!r}: expected an integer >= 0")
        self.dataset, self.batch_size, self.drop_last, self.num_workers = dataset, batch_size, drop_last, num_workers
        self.sampler = sampler or (RandomSampler(len(dataset)) if shuffle else SequentialSampler(len(dataset)))
        self.device = get_device(device)

    def __len__(self) -> int:
        full, rest = divmod(len(self.sampler), self.batch_size)
        return full + (1 if rest and not self.drop_last else 0)

    def _batches(self) -> Iterator[numpy.ndarray]:
        indices = numpy.fromiter(iter(self.sampler), dtype=numpy.int64)
        for start in range(0, len(indices), self.batch_size):
            batch = indices[start : start + self.batch_size]
            if len(batch) == self.batch_size or not self.drop_last:
                yield batch

    def _load(self, indices: numpy.ndarray) -> tuple[Tensor, ...]:
        fetch = getattr(self.dataset, "fetch", None)
        fields: Sequence[numpy.ndarray] = (
            fetch(indices) if fetch else [numpy.stack(f) for f in zip(*(self.dataset[int(i)] for i in indices))]
        )
        return tuple(Tensor(self.device.from_host(numpy.ascontiguousarray(f)), self.device) for f in fields)

    def __iter__(self) -> Iterator[tuple[Tensor, ...]]:
        if self.num_workers == 0:
            for batch in self._batches():
                yield self._load(batch)
            return
        with ThreadPoolExecutor(self.num_workers, thread_name_prefix="devcheck-loader") as pool:
            pending: deque = deque()
            for batch in self._batches():
                pending.append(pool.submit(self._load, batch))
                if len(pending) > 2 * self.num_workers:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
