"""Softmax regression with its hand-derived gradient: no autograd anywhere (the math behind d2l 3.4 and 3.6).

Model: O = XW + b, y_hat = softmax(O); loss: l = (1/n) sum_i -log y_hat[i, y_i].
Differentiating, dl/dO = (softmax(O) - onehot(y)) / n, so the gradients are

    dl/dW = Xᵀ (softmax(O) - onehot(y)) / n        dl/db = sum_i (softmax(O) - onehot(y))_i / n

and one minibatch SGD step is W <- W - lr dl/dW, b <- b - lr dl/db. `gradients` equals autograd's in float64.
Weight decay wd adds (wd / 2) ||W||² to l, hence wd W to dl/dW: the step becomes W <- W - lr (Xᵀ G + wd W).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from linear_nets.models import WeightsAndBias
from linear_nets.softmax import stable_cross_entropy, stable_softmax


def logit_gradient(logits: Tensor, y: Tensor, weights: Tensor | None = None) -> Tensor:
    """G = dl/dO = (softmax(O) - onehot(y)) / n: the gradient of the mean cross-entropy with respect to the logits
    O `[n, q]`, for classes y `[n]`. With weights w `[n]` (the loss (1/n) sum_i w_i l_i), row i is times w_i.

    Example:
        >>> logit_gradient(torch.zeros(2, 2), torch.tensor([0, 1]))
        tensor([[-0.2500,  0.2500],
                [ 0.2500, -0.2500]])
    """
    n, q = logits.shape
    G = stable_softmax(logits) - torch.nn.functional.one_hot(y, q).to(logits.dtype)
    return G / n if weights is None else G * (weights / n).unsqueeze(1)


def gradients(
    X: Tensor, y: Tensor, logits: Tensor, weights: Tensor | None = None, *, W: Tensor | None = None,
    weight_decay: float = 0.0,
) -> tuple[Tensor, Tensor]:
    """Gradients of the mean cross-entropy of softmax(XW + b) with respect to W and b, by hand, for inputs X `[n, d]`,
    classes y `[n]`, logits O = XW + b `[n, q]` and per-example `weights` (see `logit_gradient`); with `W` `[d, q]`
    and `weight_decay` wd the loss also holds (wd / 2) ||W||².

    Returns `(dl/dW [d, q], dl/db [q])`: `Xᵀ G (+ wd W)` and the column sums of G, with G = `logit_gradient(O, y)`.

    Example:
        >>> grad_W, grad_b = gradients(torch.eye(2), torch.tensor([0, 1]), torch.zeros(2, 2))
        >>> grad_b
        tensor([0., 0.])
    """
    G = logit_gradient(logits, y, weights)
    # Xᵀ G computed as (Gᵀ X)ᵀ: the same numbers, in the layout of W (column-major, see SoftmaxRegression); the
    # product in this order takes about half as long on a CPU (benchmarks/RESULTS.md, the layout rows)
    grad_W = (G.T @ X).T
    return (grad_W + weight_decay * W if weight_decay else grad_W), G.sum(dim=0)


class SoftmaxRegression(WeightsAndBias):
    """softmax(XW + b) updated with `gradients` (no autograd): `train(model.net, ..., model.loss, n, model.updater)`.

    W `[num_inputs, num_outputs]` ~ N(0, init_std²) and b = 0, drawn from `generator` exactly as the scratch model
    draws them, so one seed gives both the same start. `net` returns the logits O (not probabilities): the loss is
    the stable cross-entropy, and the class with the largest logit is the class with the largest probability.
    Built from the arguments of every `WeightsAndBias`.

    Example:
        >>> model = SoftmaxRegression(num_inputs=4, num_outputs=3, lr=0.1)
        >>> X, y = torch.randn(8, 4), torch.randint(0, 3, (8,))
        >>> before = model.loss(model.net(X), y).mean()
        >>> for _ in range(50):
        ...     model.step(X, y, model.net(X))
        >>> bool(model.loss(model.net(X), y).mean() < before)
        True
    """

    requires_grad = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # W is [d, q] as in the book, stored column-major (Wᵀ row-major, as nn.Linear keeps its weight): the two
        # products below then run as [q, d] x [d, n] and [q, n] x [n, d], about 3x faster on a CPU than the
        # same products in the other layout (benchmarks/RESULTS.md).
        self.W = self.W.T.contiguous().T

    def net(self, X: Tensor) -> Tensor:
        """Logits O = XW + b `[n, q]` of a batch `X` `[n, ...]` flattened to `[n, num_inputs]`.

        Computed as Oᵀ = WᵀXᵀ + b (the fast layout; see `__init__`), so O comes back column-major.
        """
        X = X.reshape(-1, self.num_inputs)
        return torch.addmm(self.b.unsqueeze(1), self.W.T, X.T).T

    logits = net  # O = XW + b: the model's `net` returns logits

    def loss(self, y_hat: Tensor, y: Tensor) -> Tensor:
        """Per-example cross-entropy of the logits `y_hat` (stable: log-sum-exp)."""
        return stable_cross_entropy(y_hat, y)

    def step(self, X: Tensor, y: Tensor, y_hat: Tensor, weights: Tensor | None = None) -> None:
        """One SGD step at the logits `y_hat = net(X)`: `gradients`, then `apply_gradients`."""
        self.apply_gradients(*gradients(X.reshape(-1, self.num_inputs), y, y_hat, weights))

    def apply_gradients(self, grad_W: Tensor, grad_b: Tensor) -> None:
        """W <- W − lr (grad_W + wd W), b <- b − lr grad_b, in place (W keeps its layout)."""
        if self.weight_decay:
            grad_W = grad_W + self.weight_decay * self.W
        self.W.sub_(grad_W, alpha=self.lr)
        self.b.sub_(grad_b, alpha=self.lr)

    @property
    def updater(self) -> SoftmaxRegression:
        """The model itself: a `training.GradientStep`, since it computes its own gradient in `step`."""
        return self
