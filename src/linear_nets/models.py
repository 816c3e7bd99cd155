"""The one interface every softmax-regression model here has, and what the three implementations share.

A `SoftmaxModel` answers three questions about a batch `X` `[n, ...]`:

    logits(X)        = O = XW + b                      [n, q]
    predict_proba(X) = softmax(O) (stable: O minus its row max first)   [n, q]
    predict(X)       = argmax_j O_j                    [n]

The from-scratch `net` ends in the book's softmax, the others return logits: code that uses a trained model calls
`logits`, `predict_proba` or `predict`, never `net`, and never asks which class it holds.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from linear_nets.checks import check_inputs
from linear_nets.softmax import stable_softmax


def init_params(
    num_inputs: int = 784,
    num_outputs: int = 10,
    *,
    init_std: float = 0.01,
    generator: torch.Generator | None = None,
    requires_grad: bool = True,
) -> tuple[Tensor, Tensor]:
    """The book's initialisation: W `[num_inputs, num_outputs]` ~ N(0, init_std²), b = 0 `[num_outputs]`.

    All three implementations draw their weights here, so one seed gives them the same start.

    Example:
        >>> W, b = init_params(generator=torch.Generator().manual_seed(0))
        >>> W.shape, b.shape, W.requires_grad
        (torch.Size([784, 10]), torch.Size([10]), True)
    """
    W = torch.normal(0.0, init_std, size=(num_inputs, num_outputs), generator=generator)
    b = torch.zeros(num_outputs)
    return W.requires_grad_(requires_grad), b.requires_grad_(requires_grad)


class SoftmaxModel:
    """Base of every softmax-regression model: `predict_proba` and `predict` follow from `logits`. Subclasses define

    - `logits(X)`: O = XW + b `[n, q]` of a batch `X` `[n, ...]`;
    - the book's trio for `train(model.net, ..., model.loss, epochs, model.updater)`: `net(X)`, `loss(y_hat, y)` (the
      per-example cross-entropy of `y_hat = net(X)`) and `updater`; `set_lr(lr)`, the rate from the next step on
      (a schedule calls it once per epoch); `parameters()`, the trainable tensors (early stopping snapshots them);
    - `state_tensors()`, the parameters detached, {"W": [d, q], "b": [q]} whichever implementation trained them
      (plus what a wrapper adds), and `load_state_tensors(tensors)`, which copies them in place (shapes must match:
      see `runs.check_state`); `to(device)` moves the parameters and returns the model.
    """

    num_inputs: int
    num_outputs: int
    net: Any
    updater: Any

    def predict_proba(self, X: Tensor) -> Tensor:
        """Class probabilities softmax(O) `[n, q]` (no gradient). The model's door: inputs of the wrong shape or dtype
        are a `DataError` here (`checks.check_inputs`); training checks its data once per fit, not per batch."""
        check_inputs(X, self.num_inputs)
        with torch.no_grad():
            return stable_softmax(self.logits(X))

    def predict(self, X: Tensor) -> Tensor:
        """The most probable class of each example `[n]` (no gradient), its inputs checked as `predict_proba`'s."""
        check_inputs(X, self.num_inputs)
        with torch.no_grad():
            return self.logits(X).argmax(dim=1)


class WeightsAndBias(SoftmaxModel):
    """A model holding plain tensors W `[d, q]` and b `[q]` and a learning rate `lr` (scratch and manual).

    Built from `num_inputs` values per example (784 for 28 x 28 images), `num_outputs` classes q, the SGD step's
    `lr` (> 0), the initial weights' `init_std` and seeded `generator` (`init_params`: one seed, one start for every
    implementation) and `weight_decay` wd >= 0, an L2 penalty on W (not b): the mean loss gains (wd / 2) ||W||².
    Autograd tracks W and b where the subclass's `requires_grad` says so.

    Example:
        >>> from linear_nets.manual.softmax_regression import SoftmaxRegression
        >>> model, other = SoftmaxRegression(4, 3), SoftmaxRegression(4, 3)
        >>> other.load_state_tensors(model.state_tensors())
        >>> torch.equal(other.W, model.W)
        True
    """

    W: Tensor
    b: Tensor
    lr: float
    requires_grad = True

    def __init__(
        self,
        num_inputs: int = 784,
        num_outputs: int = 10,
        *,
        lr: float = 0.1,
        init_std: float = 0.01,
        generator: torch.Generator | None = None,
        weight_decay: float = 0.0,
    ) -> None:
        self.num_inputs, self.num_outputs, self.lr, self.weight_decay = num_inputs, num_outputs, lr, weight_decay
        self.W, self.b = init_params(
            num_inputs, num_outputs, init_std=init_std, generator=generator, requires_grad=self.requires_grad
        )

    def parameters(self) -> list[Tensor]:
        return [self.W, self.b]

    def set_lr(self, lr: float) -> None:
        self.lr = lr

    def state_tensors(self) -> dict[str, Tensor]:
        return {"W": self.W.detach(), "b": self.b.detach()}

    def load_state_tensors(self, tensors: dict[str, Tensor]) -> None:
        with torch.no_grad():
            self.W.copy_(tensors["W"])
            self.b.copy_(tensors["b"])

    def to(self, device: torch.device | str) -> WeightsAndBias:
        """Move the parameters to `device` (keeping their memory layout and `requires_grad`); return the model."""
        self.W = self.W.detach().to(device).requires_grad_(self.W.requires_grad)
        self.b = self.b.detach().to(device).requires_grad_(self.b.requires_grad)
        return self
