"""Synthetic linear-regression data and the book's two ways to cut it into minibatches (d2l 3.2, 3.3)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
from torch import Tensor

from linear_nets.data.batches import ArrayLoader


def synthetic_data(
    w: Tensor | Sequence[float],
    b: float,
    num_examples: int,
    noise: float = 0.01,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor]:
    """Generate y = Xw + b + ε with X ~ N(0, 1) and ε ~ N(0, noise²) (d2l 3.2): features `[n, d]` and labels
    `[n, 1]`, float32, for true weights `w` `[d]`, n = `num_examples`; a seeded `generator` makes them reproducible.

    Example:
        >>> X, y = synthetic_data([2, -3.4], 4.2, 1000, generator=torch.Generator().manual_seed(0))
        >>> X.shape, y.shape
        (torch.Size([1000, 2]), torch.Size([1000, 1]))
    """
    w = torch.as_tensor(w, dtype=torch.float32)
    X = torch.normal(0.0, 1.0, (num_examples, len(w)), generator=generator)
    y = X @ w + b
    y += torch.normal(0.0, noise, y.shape, generator=generator)
    return X, y.reshape((-1, 1))


def data_iter(
    batch_size: int, features: Tensor, labels: Tensor, generator: torch.Generator | None = None
) -> Iterator[tuple[Tensor, Tensor]]:
    """The book's from-scratch minibatch generator (d2l 3.2): one pass over `features` `[n, d]` and `labels`
    `[n, ...]` in random order (drawn from `generator`), the last batch kept even when short. A generator is used up
    after one pass: call `data_iter` again for the next epoch.

    Example:
        >>> X, y = torch.arange(10.0).reshape(5, 2), torch.arange(5.0)
        >>> [len(yb) for _, yb in data_iter(2, X, y)]
        [2, 2, 1]
    """
    num_examples = len(features)
    indices = torch.randperm(num_examples, generator=generator)
    for i in range(0, num_examples, batch_size):
        batch_indices = indices[i : i + batch_size]
        yield features[batch_indices], labels[batch_indices]


def load_array(
    data_arrays: tuple[Tensor, ...],
    batch_size: int,
    is_train: bool = True,
    generator: torch.Generator | None = None,
    sampling: str = "shuffle",
) -> ArrayLoader:
    """Minibatches over in-memory tensors, the concise way (d2l 3.3's `load_array`, on `ArrayLoader`): re-iterable,
    shuffled afresh every pass when `is_train`; the last partial batch is kept (or, with another `sampling` of
    `ArrayLoader`, dropped, filled up, or every batch drawn with replacement).

    Example:
        >>> X, y = torch.zeros(5, 2), torch.zeros(5, 1)
        >>> len(load_array((X, y), batch_size=2))
        3
    """
    return ArrayLoader(data_arrays, batch_size, shuffle=is_train, generator=generator, sampling=sampling)

