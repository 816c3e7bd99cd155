"""Minibatches over in-memory tensors.

A batch is a slice of a tensor, never a list of per-sample objects: one `randperm` per epoch, then one gather
(`index_select`) per batch. uint8 images become float32 in [0, 1] per batch, so the dataset stays 4x smaller in
memory (and, measured, a gather of uint8 rows plus the conversion is no slower than gathering float rows).
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor

from linear_nets.errors import ConfigError, DataError


class ArrayLoader:
    """Re-iterable minibatch loader over tensors that share their first dimension, like a `DataLoader`.

    Each iteration is one epoch. With `shuffle=True` the order is a fresh permutation per epoch drawn from
    `generator` (seeded by `seed`), so the same seed gives the same batches. A uint8 first tensor (images) is
    converted to float32 and divided by 255 per batch; with `resize=N` it is also resized bilinearly to N x N
    (like d2l's `resize=`).

    Args:
        tensors: the arrays, e.g. `(images, labels)`; all of the same length.
        batch_size: examples per batch (> 0).
        shuffle: reshuffle every epoch.
        drop_last: drop the last batch when it is smaller than `batch_size`.
        resize: side length to resize `[N, C, H, W]` images to, or None.
        seed: seed of the shuffling generator (ignored when `generator` is given).
        generator: a `torch.Generator` to draw permutations from.

    Example:
        >>> X, y = torch.arange(10.0).reshape(5, 2), torch.arange(5)
        >>> [len(yb) for _, yb in ArrayLoader((X, y), batch_size=2)]
        [2, 2, 1]
    """

    def __init__(
        self,
        tensors: tuple[Tensor, ...],
        batch_size: int,
        *,
        shuffle: bool = False,
        drop_last: bool = False,
        resize: int | None = None,
        seed: int | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        if not tensors:
            raise ConfigError("tensors: give at least one tensor")
        n = tensors[0].shape[0]
        for i, t in enumerate(tensors):
            if t.shape[0] != n:
                raise DataError(f"tensors[{i}] has {t.shape[0]} rows but tensors[0] has {n}: they must agree")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size <= 0:
            raise ConfigError(f"batch_size must be a positive integer, got {batch_size!r}")
        if resize is not None and (isinstance(resize, bool) or not isinstance(resize, int) or resize <= 0):
            raise ConfigError(f"resize must be a positive integer, got {resize!r}")
        if resize is not None and tensors[0].dim() != 4:
            raise DataError(f"resize needs images of shape [N, C, H, W], got {list(tensors[0].shape)}")
        self.tensors = tensors
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.resize = resize
        if generator is None:
            generator = torch.Generator()
            # Generator.seed() draws a fresh seed for this generator only; torch.seed() would reseed the global RNG.
            generator.manual_seed(seed) if seed is not None else generator.seed()
        self.generator = generator

    @property
    def num_examples(self) -> int:
        """Number of examples in one full pass."""
        return self.tensors[0].shape[0]

    def __len__(self) -> int:
        """Number of batches per epoch."""
        full, rest = divmod(self.num_examples, self.batch_size)
        return full if self.drop_last or rest == 0 else full + 1

    def __iter__(self) -> Iterator[tuple[Tensor, ...]]:
        n, bs = self.num_examples, self.batch_size
        order = None
        if self.shuffle:  # drawn on the CPU generator (reproducible anywhere), used where the data lives
            order = torch.randperm(n, generator=self.generator).to(self.tensors[0].device)
        stop = n - n % bs if self.drop_last else n
        for start in range(0, stop, bs):
            if order is None:
                batch = tuple(t[start : start + bs] for t in self.tensors)
            else:
                # index_select: ~2x faster than t[index] (advanced indexing) for a batch of rows (benchmarks/)
                index = order[start : start + bs]
                batch = tuple(t.index_select(0, index) for t in self.tensors)
            yield (self._prepare(batch[0]), *batch[1:])

    def to(self, device: torch.device | str) -> ArrayLoader:
        """Move the data to `device` (e.g. "cuda") in place, like `nn.Module.to`; return the loader.

        Example:
            >>> loader = ArrayLoader((torch.zeros(4, 2), torch.zeros(4)), batch_size=2).to("cpu")
            >>> loader.tensors[0].device.type
            'cpu'
        """
        self.tensors = tuple(t.to(device) for t in self.tensors)
        return self

    def _prepare(self, X: Tensor) -> Tensor:
        if X.dtype == torch.uint8:
            X = X.to(torch.float32).div_(255.0)
        if self.resize is not None:
            X = torch.nn.functional.interpolate(
                X, size=(self.resize, self.resize), mode="bilinear", align_corners=False
            )
        return X
