"""Minibatches over in-memory tensors: one `randperm` per epoch, then one gather (`index_select`) per batch.

uint8 images become float32 in [0, 1] per batch, so the dataset stays 4x smaller in memory (measured: a gather of
uint8 rows plus the conversion is no slower than gathering float rows).

How a shuffled epoch of n examples is cut into batches of B is the loader's `sampling` (one of `SAMPLING_MODES`):
- `shuffle` (the book's): ceil(n / B) batches of a fresh permutation, the last one short when B does not divide n.
- `shuffle-drop-last`: floor(n / B) batches; the short rest of the permutation is dropped (`drop_last=True`).
- `shuffle-fill`: ceil(n / B) full batches: the short last one is topped up with examples drawn at random, without
  repeats, from those not already in it.
- `with-replacement`: ceil(n / B) full batches of examples drawn uniformly with replacement (about 1/e of the
  examples go unseen in an epoch).
Every draw comes from the loader's `generator`, so the same seed gives the same batches and a restored generator
state resumes exactly. With `shard=(rank, world_size)` every process draws the same order and keeps its share of
every batch, `index.tensor_split(world_size)[rank]`: the shares together are the batches one process would train on.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor

from linear_nets.checks import one_of
from linear_nets.choices import SAMPLING
from linear_nets.threads import chosen_threads, work_threads

SAMPLING_MODES = SAMPLING
"""How a shuffled epoch is cut into minibatches (see the module docstring); `shuffle` is the book's."""


class ArrayLoader:
    """Re-iterable minibatch loader over tensors that share their first dimension, like a `DataLoader`.

    Each iteration is one epoch over `tensors` (e.g. `(images, labels)`, all of the same length). With
    `shuffle=True` the order is a fresh permutation per epoch drawn from `generator` (else one seeded by `seed`),
    so the same seed gives the same batches; `sampling` (one of `SAMPLING_MODES`, see the module docstring) chooses
    what happens to the short last batch. `drop_last` drops a short last batch in file order too. A uint8 first
    tensor (images `[N, C, H, W]`) is converted to float32 and divided by 255 per batch; with `resize=N` it is also
    resized bilinearly to N x N (like d2l's `resize=`). `shard=(rank, world_size)` yields only this process's share
    of every batch; `batch_size` stays the global batch size.

    Example:
        >>> X, y = torch.arange(10.0).reshape(5, 2), torch.arange(5)
        >>> [len(yb) for _, yb in ArrayLoader((X, y), batch_size=2)]
        [2, 2, 1]
        >>> [len(yb) for _, yb in ArrayLoader((X, y), batch_size=2, shuffle=True, seed=0, sampling="shuffle-fill")]
        [2, 2, 2]
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
        sampling: str = "shuffle",
        shard: tuple[int, int] = (0, 1),
    ) -> None:
        self.tensors, self.batch_size = tensors, batch_size
        self.shuffle, self.drop_last = shuffle, drop_last
        self.sampling = one_of("sampling", sampling, SAMPLING_MODES)
        self.resize, self.shard = resize, shard
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
        if self.shuffle and self.sampling in ("shuffle-fill", "with-replacement"):
            return full + (rest > 0)
        return full if self._drops_rest() or rest == 0 else full + 1

    def _drops_rest(self) -> bool:
        return self.drop_last or (self.shuffle and self.sampling == "shuffle-drop-last")

    def __iter__(self) -> Iterator[tuple[Tensor, ...]]:
        """One epoch of batches, each gathered and converted with the threads the command line would choose
        (`linear_nets.threads`: on a busy machine, torch's default made an epoch 40-100x slower); the caller's loop
        runs with its own setting between batches."""
        threads = chosen_threads()  # once an epoch: asking the machine costs ~10 ms
        batches = self._batches()
        while True:
            with work_threads(threads):
                batch = next(batches, None)
            if batch is None:
                return
            yield batch

    def _batches(self) -> Iterator[tuple[Tensor, ...]]:
        n, bs = self.num_examples, self.batch_size
        rank, world_size = self.shard
        order = self._epoch_order() if self.shuffle else torch.arange(n, device=self.tensors[0].device)
        stop = n - n % bs if self._drops_rest() else len(order)
        for start in range(0, stop, bs):
            if self.shuffle or world_size > 1:
                index = order[start : start + bs]
                index = index.tensor_split(world_size)[rank] if world_size > 1 else index
                # index_select: ~2x faster than t[index] (advanced indexing) for a batch of rows (benchmarks/)
                batch = tuple(t.index_select(0, index) for t in self.tensors)
            else:  # file order on one process: slices, no copy
                batch = tuple(t[start : start + bs] for t in self.tensors)
            yield (self._prepare(batch[0]), *batch[1:])

    def _epoch_order(self) -> Tensor:
        """The epoch's example indices, drawn on the CPU generator (reproducible anywhere), where the data lives."""
        n, bs = self.num_examples, self.batch_size
        if self.sampling == "with-replacement":
            # max(n, 1): randint needs a non-empty range even when an empty data set asks for no draws at all
            order = torch.randint(max(n, 1), (len(self) * bs,), generator=self.generator)
        else:
            order = torch.randperm(n, generator=self.generator)
            rest = n % bs
            if self.sampling == "shuffle-fill" and rest:
                # The short last batch is order[n - rest:]; top it up with bs - rest examples drawn without
                # replacement from the n - rest others (order[:n - rest]), so the batch holds no example twice.
                pick = torch.randperm(n - rest, generator=self.generator)[: bs - rest]
                order = torch.cat([order, order[pick]])
        return order.to(self.tensors[0].device)

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
            X = torch.nn.functional.interpolate(X, size=(self.resize, self.resize), mode="bilinear")
        return X

