"""Synthetic linear-regression data and the book's two ways to cut it into minibatches (d2l 3.2, 3.3)."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import torch
from torch import Tensor

from linear_nets.data.batches import ArrayLoader
from linear_nets.errors import ConfigError, DataError


def _check_positive_int(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigError(f"{name} must be a positive integer, got {value!r}")


def synthetic_data(
    w: Tensor | Sequence[float],
    b: float,
    num_examples: int,
    noise: float = 0.01,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor]:
    """Generate y = Xw + b + ε with X ~ N(0, 1) and ε ~ N(0, noise²) (d2l 3.2).

    Args:
        w: true weights, shape `[d]`.
        b: true bias.
        num_examples: n, number of rows (> 0).
        noise: standard deviation of ε (>= 0).
        generator: a seeded `torch.Generator` for reproducible data.

    Returns:
        features `[n, d]` and labels `[n, 1]`, float32.

    Example:
        >>> X, y = synthetic_data([2, -3.4], 4.2, 1000, generator=torch.Generator().manual_seed(0))
        >>> X.shape, y.shape
        (torch.Size([1000, 2]), torch.Size([1000, 1]))
    """
    w = torch.as_tensor(w, dtype=torch.float32)
    if w.dim() != 1 or w.numel() == 0:
        raise DataError(f"w must be a non-empty vector of weights, got shape {list(w.shape)}")
    if not torch.isfinite(w).all():
        raise DataError("w contains NaN or inf")
    if not math.isfinite(b):
        raise DataError(f"b must be finite, got {b}")
    _check_positive_int("num_examples", num_examples)
    if not (0 <= noise < math.inf):
        raise ConfigError(f"noise must be a finite number >= 0, got {noise!r}")
    X = torch.normal(0.0, 1.0, (num_examples, len(w)), generator=generator)
    y = X @ w + b
    y += torch.normal(0.0, noise, y.shape, generator=generator)
    return X, y.reshape((-1, 1))


def _check_pair(features: Tensor, labels: Tensor) -> None:
    if features.shape[0] != labels.shape[0]:
        raise DataError(f"features have {features.shape[0]} rows but labels have {labels.shape[0]}: they must agree")


def data_iter(
    batch_size: int, features: Tensor, labels: Tensor, generator: torch.Generator | None = None
) -> Iterator[tuple[Tensor, Tensor]]:
    """The book's from-scratch minibatch generator (d2l 3.2): shuffle the indices, yield slices of them.

    One pass over the data in random order. The last batch is kept even when it is smaller than
    `batch_size` (1000 examples with batch size 64 give 15 batches of 64 and one of 40). A generator is
    used up after one pass: call `data_iter` again for the next epoch.

    Args:
        batch_size: examples per batch (> 0).
        features: `[n, d]`; labels: `[n, ...]`, rows matching.
        generator: a seeded `torch.Generator` for a reproducible order.

    Example:
        >>> X, y = torch.arange(10.0).reshape(5, 2), torch.arange(5.0)
        >>> [len(yb) for _, yb in data_iter(2, X, y)]
        [2, 2, 1]
    """
    # Checked here, not inside the generator, so bad arguments fail at the call rather than at the first batch.
    _check_positive_int("batch_size", batch_size)
    _check_pair(features, labels)
    return _batches(batch_size, features, labels, generator)


def _batches(
    batch_size: int, features: Tensor, labels: Tensor, generator: torch.Generator | None
) -> Iterator[tuple[Tensor, Tensor]]:
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
    """Minibatches over in-memory tensors, the concise way (d2l 3.3's `load_array`, on `ArrayLoader`).

    Re-iterable (one epoch per pass); shuffled afresh every pass when `is_train`; the last partial batch is
    kept (or, with another `sampling` of `ArrayLoader`, dropped, filled up, or every batch drawn with replacement).

    Example:
        >>> X, y = torch.zeros(5, 2), torch.zeros(5, 1)
        >>> len(load_array((X, y), batch_size=2))
        3
    """
    _check_positive_int("batch_size", batch_size)
    return ArrayLoader(data_arrays, batch_size, shuffle=is_train, generator=generator, sampling=sampling)


def check_regression_data(features: Tensor, labels: Tensor) -> Tensor:
    """Check a regression data set and return the labels as a column `[n, 1]`.

    Raises:
        DataError: features are not `[n, d]`, labels do not have n values, or either holds NaN/inf.

    Example:
        >>> check_regression_data(torch.zeros(3, 2), torch.zeros(3)).shape
        torch.Size([3, 1])
    """
    if features.dim() != 2 or features.shape[0] == 0:
        raise DataError(f"features must be a non-empty matrix [n, d], got shape {list(features.shape)}")
    if labels.numel() != features.shape[0]:
        raise DataError(
            f"labels have {labels.numel()} values but features have {features.shape[0]} rows: they must agree"
        )
    for name, t in (("features", features), ("labels", labels)):
        if not torch.isfinite(t).all():
            raise DataError(f"{name} contain NaN or inf: clean the data first")
    return labels.reshape(-1, 1)
