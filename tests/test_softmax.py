"""Softmax and cross-entropy: the naive forms overflow (the lesson of d2l 3.7), the stable ones match torch."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from linear_nets.softmax import (
    cross_entropy,
    softmax,
    stable_cross_entropy,
    stable_cross_entropy_and_softmax,
    stable_softmax,
)


def random_logits(scale: float, n: int = 64, q: int = 10, seed: int = 0, dtype=torch.float32):
    generator = torch.Generator().manual_seed(seed)
    logits = scale * torch.randn(n, q, generator=generator, dtype=torch.float64)
    return logits.to(dtype), torch.randint(0, q, (n,), generator=generator)


# --- the book's definitions on ordinary logits -------------------------------------------------------------------


def test_softmax_is_a_probability_distribution_per_row():
    logits, _ = random_logits(3.0)
    probs = softmax(logits)
    assert (probs > 0).all()
    torch.testing.assert_close(probs.sum(dim=1), torch.ones(64))


@pytest.mark.parametrize("form", [softmax, stable_softmax])
def test_softmax_forms_equal_torch_softmax_on_ordinary_logits(form):
    logits, _ = random_logits(5.0, dtype=torch.float64)
    torch.testing.assert_close(form(logits), torch.softmax(logits, dim=1), rtol=1e-12, atol=1e-15)


def test_cross_entropy_is_minus_log_of_the_picked_probability():
    y_hat = torch.tensor([[0.1, 0.3, 0.6], [0.3, 0.2, 0.5]])
    torch.testing.assert_close(cross_entropy(y_hat, torch.tensor([0, 2])), -torch.log(torch.tensor([0.1, 0.5])))


def test_naive_cross_entropy_of_naive_softmax_equals_torch_on_ordinary_logits():
    logits, y = random_logits(2.0, dtype=torch.float64)
    torch.testing.assert_close(cross_entropy(softmax(logits), y), F.cross_entropy(logits, y, reduction="none"))


# --- the lesson: logits around ±1e2 .. ±1e4 -------------------------------------------------------------------------


@pytest.mark.parametrize("scale", [1e2, 1e3, 1e4])
def test_naive_softmax_overflows_to_nan_for_large_logits(scale):
    logits, y = random_logits(scale)
    probs = softmax(logits)
    # exp(o) = inf for o > 88 in float32, and inf / inf = nan
    assert torch.isnan(probs).any()
    loss = cross_entropy(probs, y)
    assert not torch.isfinite(loss).all()


@pytest.mark.parametrize("scale", [2e2, 1e3, 1e4])  # exp(-100) is still a float32 subnormal; exp(-200) is 0
def test_naive_cross_entropy_is_infinite_where_the_picked_probability_underflows(scale):
    logits = torch.tensor([[0.0, -scale], [-scale, 0.0]])  # no overflow: the largest exponent is exp(0)
    y = torch.tensor([1, 0])  # each pick is the tiny probability exp(-scale) / (1 + exp(-scale)), 0 in float32
    assert torch.isfinite(softmax(logits)).all()
    assert torch.isinf(cross_entropy(softmax(logits), y)).all()
    torch.testing.assert_close(stable_cross_entropy(logits, y), torch.tensor([scale, scale]))


@pytest.mark.parametrize("scale", [1.0, 1e2, 1e3, 1e4])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_stable_forms_are_finite_and_equal_torch(scale, seed):
    logits, y = random_logits(scale, seed=seed)
    probs, loss = stable_softmax(logits), stable_cross_entropy(logits, y)
    assert torch.isfinite(probs).all() and torch.isfinite(loss).all()
    # reference: torch.nn.functional in float64
    reference = F.cross_entropy(logits.double(), y, reduction="none")
    torch.testing.assert_close(loss.double(), reference, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(probs.double(), torch.softmax(logits.double(), dim=1), rtol=0, atol=1e-6)
    # and in float64 both ways, to 1e-6 absolute at every scale
    loss64 = stable_cross_entropy(logits.double(), y)
    assert (loss64 - reference).abs().max() <= 1e-6


@pytest.mark.parametrize("scale", [1.0, 1e4])
def test_loss_and_softmax_from_one_pass_equal_the_separate_functions(scale):
    logits, y = random_logits(scale, dtype=torch.float64)
    loss, probs = stable_cross_entropy_and_softmax(logits, y)
    torch.testing.assert_close(loss, stable_cross_entropy(logits, y), rtol=0, atol=0)
    torch.testing.assert_close(probs, stable_softmax(logits), rtol=1e-15, atol=1e-15)


@pytest.mark.parametrize("scale", [1.0, 1e2, 1e4])
def test_stable_forms_gradients_equal_autograd_through_torch(scale):
    logits, y = random_logits(scale, n=16, dtype=torch.float64)
    ours = logits.clone().requires_grad_()
    theirs = logits.clone().requires_grad_()
    stable_cross_entropy(ours, y).sum().backward()
    F.cross_entropy(theirs, y, reduction="sum").backward()
    torch.testing.assert_close(ours.grad, theirs.grad, rtol=0, atol=1e-10)
    # the closed form of that gradient: softmax(O) - onehot(y)
    torch.testing.assert_close(ours.grad, torch.softmax(logits, 1) - F.one_hot(y, 10).double(), rtol=0, atol=1e-10)

    weights = torch.randn(16, 10, dtype=torch.float64)  # a random vector-Jacobian product of the softmax
    ours, theirs = logits.clone().requires_grad_(), logits.clone().requires_grad_()
    (stable_softmax(ours) * weights).sum().backward()
    (torch.softmax(theirs, dim=1) * weights).sum().backward()
    torch.testing.assert_close(ours.grad, theirs.grad, rtol=0, atol=1e-10)


def test_stable_forms_pass_finite_difference_gradcheck():
    logits, y = random_logits(3.0, n=5, q=4, dtype=torch.float64)
    logits.requires_grad_()
    assert torch.autograd.gradcheck(lambda logits: stable_cross_entropy(logits, y), (logits,))
    assert torch.autograd.gradcheck(stable_softmax, (logits,))
