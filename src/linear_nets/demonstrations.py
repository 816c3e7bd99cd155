"""The claims of d2l section 3.1, as functions a test (or a learner) can run: vectorisation is faster
(`time_vector_addition`), the normal density (`normal`), and Gaussian noise makes the squared loss the
maximum-likelihood loss (`gaussian_nll`: the same up to a scale and a constant that do not depend on the model).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor

from linear_nets.losses import squared_loss
from linear_nets.timing import Timer


def add_with_loop(a: Tensor, b: Tensor) -> Tensor:
    """c_i = a_i + b_i, one Python-level element at a time (the slow way the book times).

    Example:
        >>> add_with_loop(torch.tensor([1.0, 2.0]), torch.tensor([3.0, 4.0]))
        tensor([4., 6.])
    """
    c = torch.zeros_like(a)
    for i in range(len(a)):
        c[i] = a[i] + b[i]
    return c


class AdditionTimings(NamedTuple):
    """Seconds taken by the element-wise loop and by the vectorised `a + b`."""

    loop_seconds: float
    vectorized_seconds: float


def time_vector_addition(n: int = 10000, generator: torch.Generator | None = None) -> AdditionTimings:
    """Time the loop and the vectorised addition of two random vectors of length `n` (d2l 3.1.2).

    Typically the loop takes tens of milliseconds and `a + b` tens of microseconds.

    Example:
        >>> t = time_vector_addition(100)
        >>> t.loop_seconds > 0 and t.vectorized_seconds > 0
        True
    """
    a, b = torch.rand(n, generator=generator), torch.rand(n, generator=generator)
    timer = Timer()
    add_with_loop(a, b)
    loop_seconds = timer.stop()
    timer.start()
    _ = a + b
    return AdditionTimings(loop_seconds, timer.stop())


def normal(x: Tensor, mu: float | Tensor, sigma: float) -> Tensor:
    """Density of N(μ, σ²) at x: exp(-(x - μ)² / (2σ²)) / sqrt(2πσ²) (`mu` may be a tensor, broadcast with x).

    Example:
        >>> round(normal(torch.tensor(0.0), 0.0, 1.0).item(), 6)  # 1 / sqrt(2π)
        0.398942
    """
    p = 1 / math.sqrt(2 * math.pi * sigma**2)
    return p * torch.exp(-0.5 / sigma**2 * (x - mu) ** 2)


class GaussianNLL(NamedTuple):
    """`gaussian_nll`'s two computations of the per-example negative log-likelihood, which must agree."""

    from_density: Tensor
    from_squared_loss: Tensor


def gaussian_nll(y_hat: Tensor, y: Tensor, sigma: float) -> GaussianNLL:
    """The negative log-likelihood of y under y = y_hat + ε, ε ~ N(0, σ²), computed two ways (d2l 3.1.3).

    -log p(y | y_hat) = log(2πσ²)/2 + (y - y_hat)² / (2σ²) = squared_loss(y_hat, y) / σ² + log(2πσ²)/2,
    so minimising the squared loss maximises the likelihood, whatever σ is. (`from_density` takes the log of
    the density, so it underflows to inf beyond about 38σ in float64; `from_squared_loss` does not.)

    Example:
        >>> nll = gaussian_nll(torch.tensor([1.0]), torch.tensor([3.0]), sigma=2.0)
        >>> torch.allclose(nll.from_density, nll.from_squared_loss)
        True
    """
    from_density = -torch.log(normal(y.reshape(y_hat.shape), y_hat, sigma))
    from_squared_loss = squared_loss(y_hat, y) / sigma**2 + 0.5 * math.log(2 * math.pi * sigma**2)
    return GaussianNLL(from_density, from_squared_loss)
