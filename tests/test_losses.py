"""Losses against torch.nn.functional, their derivatives against autograd and finite differences (float64)."""

from __future__ import annotations

import doctest
import math

import pytest
import torch
import torch.nn.functional as F

from linear_nets.errors import ConfigError
from linear_nets.losses import (
    AbsoluteLoss,
    HuberLoss,
    SquaredLoss,
    absolute_loss,
    evaluate_loss,
    get_loss,
    huber_loss,
    likelihood,
    squared_loss,
)

SIGMAS = [0.3, 1.0, 2.5]


def random_pair(seed: int, n: int = 200, scale: float = 3.0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    y_hat = torch.randn(n, 1, dtype=torch.float64, generator=g) * scale
    y = torch.randn(n, 1, dtype=torch.float64, generator=g) * scale
    return y_hat, y


def all_losses() -> list:
    return [SquaredLoss(reduction="none"), AbsoluteLoss(reduction="none")] + [
        HuberLoss(s, reduction="none") for s in SIGMAS
    ]


@pytest.mark.parametrize("seed", range(3))
def test_values_match_torch_functional(seed):
    y_hat, y = random_pair(seed)
    torch.testing.assert_close(squared_loss(y_hat, y), F.mse_loss(y_hat, y, reduction="none") / 2)
    torch.testing.assert_close(absolute_loss(y_hat, y), F.l1_loss(y_hat, y, reduction="none"))
    for sigma in SIGMAS:
        expected = F.smooth_l1_loss(y_hat, y, reduction="none", beta=sigma)
        torch.testing.assert_close(huber_loss(y_hat, y, sigma), expected)
        torch.testing.assert_close(huber_loss(y_hat, y, sigma), F.huber_loss(y_hat, y, "none", delta=sigma) / sigma)


def test_both_huber_branches_are_exercised():
    y_hat, y = random_pair(0)
    r = (y_hat - y).abs()
    assert (r < 0.3).any() and (r > 2.5).any()


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_reduced_modules_match_torch_nn(reduction):
    y_hat, y = random_pair(1)
    torch.testing.assert_close(SquaredLoss(reduction)(y_hat, y), torch.nn.MSELoss(reduction=reduction)(y_hat, y) / 2)
    torch.testing.assert_close(AbsoluteLoss(reduction)(y_hat, y), torch.nn.L1Loss(reduction=reduction)(y_hat, y))
    torch.testing.assert_close(
        HuberLoss(0.7, reduction)(y_hat, y), torch.nn.SmoothL1Loss(reduction=reduction, beta=0.7)(y_hat, y)
    )


def test_labels_are_reshaped_like_the_book():
    y_hat = torch.tensor([[1.0], [2.0]])
    assert squared_loss(y_hat, torch.tensor([0.0, 0.0])).shape == (2, 1)


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_gradient_matches_autograd(seed, reduction):
    y_hat, y = random_pair(seed)
    for loss in all_losses():
        loss.reduction = reduction
        y_hat_ = y_hat.clone().requires_grad_(True)
        (auto,) = torch.autograd.grad(loss(y_hat_, y).sum(), y_hat_)
        manual = loss.gradient(y_hat, y)
        assert ((manual - auto).abs().max() / auto.abs().max()).item() < 1e-12, loss


@pytest.mark.parametrize("seed", range(2))
def test_derivative_matches_finite_differences(seed):
    y_hat, y = random_pair(seed)
    h = 1e-6
    for loss in all_losses():
        sigma = getattr(loss, "sigma", None)
        r = (y_hat - y).abs()
        # central differences are wrong within h of a kink (0 for L1, ±σ for Huber): stay away from those
        smooth = (r > 1e-3) & ((r - sigma).abs() > 1e-3) if sigma is not None else r > 1e-3
        numeric = (loss.value(y_hat + h, y) - loss.value(y_hat - h, y)) / (2 * h)
        torch.testing.assert_close(loss.derivative(y_hat, y)[smooth], numeric[smooth], rtol=1e-6, atol=1e-8)


def test_derivatives_at_the_kinks():
    zero = torch.zeros(1, dtype=torch.float64)
    assert AbsoluteLoss().derivative(zero, zero).item() == 0.0  # the subgradient torch also uses
    huber = HuberLoss(2.0)
    at_sigma = torch.tensor([2.0], dtype=torch.float64)
    assert huber.derivative(at_sigma, zero).item() == pytest.approx(1.0)  # both pieces have slope 1 there
    assert huber.value(at_sigma, zero).item() == pytest.approx(2.0**2 / (2 * 2.0))  # and value σ/2


def test_likelihood_is_exp_of_minus_loss_and_gaussian_for_squared():
    y_hat, y = random_pair(2, scale=1.0)
    for loss in all_losses():
        torch.testing.assert_close(loss.likelihood(y_hat, y), torch.exp(-loss.value(y_hat, y)))
    # squared loss <-> N(y_hat, 1): exp(-l) = sqrt(2π) * density
    density = torch.distributions.Normal(y_hat, 1.0).log_prob(y).exp()
    torch.testing.assert_close(likelihood(squared_loss(y_hat, y)), math.sqrt(2 * math.pi) * density)
    # absolute loss <-> Laplace(y_hat, 1): exp(-l) = 2 * density
    density = torch.distributions.Laplace(y_hat, 1.0).log_prob(y).exp()
    torch.testing.assert_close(AbsoluteLoss().likelihood(y_hat, y), 2 * density)


def test_get_loss_builds_each_loss():
    assert isinstance(get_loss("squared"), SquaredLoss)
    assert isinstance(get_loss("l1"), AbsoluteLoss)
    huber = get_loss("huber", delta=0.5, reduction="none")
    assert isinstance(huber, HuberLoss) and huber.delta == 0.5 and huber.reduction == "none"


@pytest.mark.parametrize(
    ("make", "fragment"),
    [
        (lambda: get_loss("l2"), "loss must be one of squared, l1, huber, got 'l2'"),
        (lambda: SquaredLoss(reduction="average"), "reduction must be one of none, mean, sum"),
    ],
)
def test_an_unknown_name_raises_config_error(make, fragment):
    # a range (Huber's delta > 0) is the config's to check (`LinregConfig.huber_delta`), not the formula's
    with pytest.raises(ConfigError, match=fragment):
        make()


def test_a_shape_mismatch_is_torchs_own_error():
    with pytest.raises(RuntimeError, match="shape"):
        squared_loss(torch.zeros(3, 1), torch.zeros(2))


def test_evaluate_loss_is_the_mean_over_the_data_set():
    X = torch.tensor([[1.0], [2.0], [3.0]])
    y = torch.zeros(3, 1)
    assert evaluate_loss(lambda X: 2 * X, X, y, SquaredLoss(reduction="sum")) == pytest.approx((4 + 16 + 36) / 2 / 3)


def test_docstring_examples_run():
    import linear_nets.losses as module

    assert doctest.testmod(module).failed == 0
