"""Regression losses (d2l section 3.1): squared, absolute (L1) and Huber, each with its derivative and likelihood.

With the residual r = y_hat - y:

| loss | value l(r) | derivative dl/dy_hat |
|---|---|---|
| squared (the book's, with the 1/2) | r² / 2 | r |
| absolute (L1) | abs(r) | sign(r) (0 at r = 0, a subgradient) |
| Huber, threshold δ | r² / (2δ) if abs(r) <= δ, else abs(r) - δ/2 | r / δ if abs(r) <= δ, else sign(r) |

The likelihood a loss stands for is exp(-l(r)) up to normalisation: minimising the loss maximises it. The
squared loss is the Gaussian's (see `linear_nets.demonstrations.gaussian_nll`), the absolute loss the Laplace
distribution's.

Relations to `torch.nn.functional` (checked by the tests): `squared_loss = mse_loss / 2`, `absolute_loss =
l1_loss`, `huber_loss(delta) = smooth_l1_loss(beta=delta)` (and `= torch huber_loss(delta=delta) / delta`).
The functions are the formulas; the `nn.Module` classes add a `reduction` like `nn.MSELoss`'s, and the derivative
for hand-derived gradients. Every implementation (scratch, manual, concise) takes its loss from here.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from linear_nets.checks import one_of
from linear_nets.choices import LOSSES

REDUCTIONS = ("none", "mean", "sum")


def _residual(y_hat: Tensor, y: Tensor) -> Tensor:
    return y_hat - y.reshape(y_hat.shape)


def squared_loss(y_hat: Tensor, y: Tensor) -> Tensor:
    """The book's squared loss per example: (y_hat - y)² / 2 (shape of `y_hat`; `y` is reshaped to it).

    Example:
        >>> squared_loss(torch.tensor([[3.0]]), torch.tensor([1.0]))
        tensor([[2.]])
    """
    return _residual(y_hat, y) ** 2 / 2


def absolute_loss(y_hat: Tensor, y: Tensor) -> Tensor:
    """Absolute (L1) loss per example: abs(y_hat - y).

    Example:
        >>> absolute_loss(torch.tensor([1.0, -2.0]), torch.tensor([0.0, 0.0]))
        tensor([1., 2.])
    """
    return _residual(y_hat, y).abs()


def huber_loss(y_hat: Tensor, y: Tensor, delta: float = 1.0) -> Tensor:
    """Huber loss per example with threshold δ: abs(r) - δ/2 if abs(r) > δ, else r² / (2δ), r = y_hat - y.

    Quadratic near zero (smooth, like the squared loss), linear in the tails (robust, like the absolute loss);
    the two pieces meet with equal value and slope at abs(r) = δ.

    Example:
        >>> huber_loss(torch.tensor([0.5, 3.0]), torch.tensor([0.0, 0.0]), delta=1.0)
        tensor([0.1250, 2.5000])
    """
    r = _residual(y_hat, y)
    return torch.where(r.abs() > delta, r.abs() - delta / 2, r**2 / (2 * delta))


def likelihood(loss_values: Tensor) -> Tensor:
    """The (unnormalised) likelihood a loss stands for, exp(-loss) per example; a data set's is the product,
    exp(-sum of losses), so minimising the summed loss maximises it.

    Example:
        >>> likelihood(squared_loss(torch.tensor([1.0]), torch.tensor([1.0])))
        tensor([1.])
    """
    return torch.exp(-loss_values)


class RegressionLoss(nn.Module):
    """A regression loss as a torch module (used like `nn.MSELoss`, `reduction` 'none', 'mean' or 'sum'), with its
    derivative and likelihood. Subclasses define `value(y_hat, y)`, the loss, and `derivative(y_hat, y)`, dl/dy_hat,
    both per example.
    """

    def __init__(self, reduction: str = "mean") -> None:
        super().__init__()
        self.reduction = one_of("reduction", reduction, REDUCTIONS)

    def forward(self, y_hat: Tensor, y: Tensor) -> Tensor:
        """The loss, reduced as `self.reduction` says."""
        values = self.value(y_hat, y)
        if self.reduction == "none":
            return values
        return values.mean() if self.reduction == "mean" else values.sum()

    def gradient(self, y_hat: Tensor, y: Tensor) -> Tensor:
        """d forward(y_hat, y) / d y_hat (summed over examples when reduction='none'): the derivative,
        divided by the number of examples when reduction='mean'."""
        d = self.derivative(y_hat, y)
        return d / d.numel() if self.reduction == "mean" else d

    def likelihood(self, y_hat: Tensor, y: Tensor) -> Tensor:
        """exp(-loss) per example (see the module function `likelihood`)."""
        return likelihood(self.value(y_hat, y))


class SquaredLoss(RegressionLoss):
    """The book's squared loss (y_hat - y)² / 2; `nn.MSELoss` without the 1/2.

    Example:
        >>> SquaredLoss()(torch.tensor([3.0, 1.0]), torch.tensor([1.0, 1.0]))
        tensor(1.)
    """

    def value(self, y_hat: Tensor, y: Tensor) -> Tensor:
        return squared_loss(y_hat, y)

    def derivative(self, y_hat: Tensor, y: Tensor) -> Tensor:
        """y_hat - y."""
        return _residual(y_hat, y)


class AbsoluteLoss(RegressionLoss):
    """Absolute (L1) loss abs(y_hat - y); equal to `nn.L1Loss`.

    Example:
        >>> AbsoluteLoss(reduction="sum")(torch.tensor([3.0, 0.0]), torch.tensor([1.0, 1.0]))
        tensor(3.)
    """

    def value(self, y_hat: Tensor, y: Tensor) -> Tensor:
        return absolute_loss(y_hat, y)

    def derivative(self, y_hat: Tensor, y: Tensor) -> Tensor:
        """sign(y_hat - y), taking the subgradient 0 at y_hat = y."""
        return torch.sign(_residual(y_hat, y))


class HuberLoss(RegressionLoss):
    """Huber loss with threshold δ (see `huber_loss`); equal to `nn.SmoothL1Loss(beta=delta)`.

    Example:
        >>> HuberLoss(delta=2.0, reduction="none")(torch.tensor([1.0, 4.0]), torch.tensor([0.0, 0.0]))
        tensor([0.2500, 3.0000])
    """

    def __init__(self, delta: float = 1.0, reduction: str = "mean") -> None:
        super().__init__(reduction)
        self.delta = float(delta)

    def value(self, y_hat: Tensor, y: Tensor) -> Tensor:
        return huber_loss(y_hat, y, self.delta)

    def derivative(self, y_hat: Tensor, y: Tensor) -> Tensor:
        """r / δ if abs(r) <= δ, else sign(r)."""
        r = _residual(y_hat, y)
        return torch.where(r.abs() > self.delta, torch.sign(r), r / self.delta)

    def extra_repr(self) -> str:
        return f"delta={self.delta}, reduction={self.reduction!r}"


def get_loss(name: str, *, delta: float = 1.0, reduction: str = "mean") -> RegressionLoss:
    """The loss called `name` ('squared', 'l1' or 'huber'; `delta` is Huber's threshold).

    Example:
        >>> get_loss("huber", delta=0.5, reduction="none")
        HuberLoss(delta=0.5, reduction='none')
    """
    if one_of("loss", name, LOSSES) == "huber":
        return HuberLoss(delta, reduction)
    return SquaredLoss(reduction) if name == "squared" else AbsoluteLoss(reduction)


def evaluate_loss(net: Callable[[Tensor], Tensor], features: Tensor, labels: Tensor, loss: RegressionLoss) -> float:
    """Mean loss of `net` over a whole data set, without gradients (the book's per-epoch report in 3.2).

    Example:
        >>> evaluate_loss(lambda X: X.sum(1, keepdim=True), torch.ones(4, 2), torch.zeros(4, 1), SquaredLoss())
        2.0
    """
    with torch.no_grad():
        return loss.value(net(features), labels).mean().item()
