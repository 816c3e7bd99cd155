"""The section 3.1 demonstrations: vectorisation timing, the normal density, Gaussian NLL vs squared loss."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from linear_nets.demonstrations import add_with_loop, gaussian_nll, normal, time_vector_addition
from linear_nets.losses import squared_loss


def test_loop_addition_equals_vectorised_addition():
    g = torch.Generator().manual_seed(0)
    a, b = torch.rand(500, generator=g), torch.rand(500, generator=g)
    assert torch.equal(add_with_loop(a, b), a + b)


def test_time_vector_addition_returns_both_timings():
    timings = time_vector_addition(10000, generator=torch.Generator().manual_seed(0))
    assert timings.loop_seconds > 0 and timings.vectorized_seconds > 0


@pytest.mark.parametrize(("mu", "sigma"), [(0.0, 1.0), (0.0, 2.0), (3.0, 1.0), (-1.5, 0.3)])
def test_normal_matches_torch_distributions(mu, sigma):
    x = torch.linspace(-7, 7, 301, dtype=torch.float64)
    expected = torch.distributions.Normal(mu, sigma).log_prob(x).exp()
    torch.testing.assert_close(normal(x, mu, sigma), expected)
    # a density: integrates to 1 (trapezoid rule over ±12σ)
    grid = torch.linspace(mu - 12 * sigma, mu + 12 * sigma, 20001, dtype=torch.float64)
    assert torch.trapezoid(normal(grid, mu, sigma), grid).item() == pytest.approx(1.0, abs=1e-9)


def test_normal_known_values():
    assert normal(torch.tensor(0.0), 0.0, 1.0).item() == pytest.approx(1 / math.sqrt(2 * math.pi))
    assert normal(torch.tensor(1.0), 0.0, 1.0).item() == pytest.approx(math.exp(-0.5) / math.sqrt(2 * math.pi))


@pytest.mark.parametrize("sigma", [0.1, 1.0, 3.0])
def test_gaussian_nll_is_scaled_squared_loss_plus_a_constant(sigma):
    g = torch.Generator().manual_seed(1)
    y_hat = torch.randn(100, 1, dtype=torch.float64, generator=g)
    y = y_hat + sigma * torch.randn(100, 1, dtype=torch.float64, generator=g)
    nll = gaussian_nll(y_hat, y, sigma)
    torch.testing.assert_close(nll.from_density, nll.from_squared_loss)
    reference = F.gaussian_nll_loss(y_hat, y, torch.full_like(y, sigma**2), full=True, reduction="none")
    torch.testing.assert_close(nll.from_density, reference)
    # the difference from squared_loss / σ² is one constant, the same for every example
    offset = nll.from_density - squared_loss(y_hat, y) / sigma**2
    torch.testing.assert_close(offset, torch.full_like(offset, 0.5 * math.log(2 * math.pi * sigma**2)))
