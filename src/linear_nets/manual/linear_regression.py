"""Linear regression with hand-derived gradients, no autograd.

For y_hat = Xw + b and the mean minibatch loss L = (1/n) Σ_i l(y_hat_i - y_i), the chain rule gives

    ∂L/∂w = Xᵀ g,   ∂L/∂b = Σ_i g_i,   where g_i = l'(y_hat_i - y_i) / n

and l' is the loss's derivative from `linear_nets.losses`: for the squared loss g = (Xw + b − y)/n, so
∂L/∂w = Xᵀ(Xw + b − y)/n; for L1, g = sign(r)/n; for Huber, g = clip(r/σ, -1, 1)/n. Nothing here requires
gradients: the parameters are plain tensors and every update runs under `torch.no_grad`.

Example (the 3.2 recipe):
    >>> from linear_nets.data.synthetic import synthetic_data
    >>> X, y = synthetic_data([2, -3.4], 4.2, 1000, generator=torch.Generator().manual_seed(0))
    >>> w, b, losses = fit(X, y, lr=0.03, num_epochs=3, batch_size=10)
    >>> bool((w - torch.tensor([2, -3.4])).abs().max() < 0.01), abs(b.item() - 4.2) < 0.01
    (True, True)
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from linear_nets.data.synthetic import load_array
from linear_nets.losses import RegressionLoss, get_loss
from linear_nets.scratch.linear_regression import linreg
from linear_nets.training import Callback, EpochCallback, train_regression


def linreg_grad(X: Tensor, y: Tensor, y_hat: Tensor, loss: RegressionLoss) -> tuple[Tensor, Tensor]:
    """Gradients of the mean minibatch loss with respect to w `[d, 1]` and b `[1]`: (Xᵀg, Σ g), g = l'(r)/n, for a
    batch X `[n, d]`, targets y `[n, 1]` and predictions y_hat = Xw + b `[n, 1]`; `loss` supplies l'.

    Example:
        >>> from linear_nets.losses import SquaredLoss
        >>> X, y = torch.tensor([[1.0], [2.0]]), torch.tensor([[0.0], [0.0]])
        >>> linreg_grad(X, y, X * 1.0, SquaredLoss())  # w = 1, b = 0: r = X
        (tensor([[2.5000]]), tensor([1.5000]))
    """
    g = loss.derivative(y_hat, y).reshape(-1, 1) / X.shape[0]
    return X.T @ g, g.sum(0)


class GradientDescentStep:
    """Minibatch SGD with the hand-derived gradient, (w, b) <- (w, b) - lr * (∂L/∂w, ∂L/∂b): a `training.GradientStep`,
    whose `step(X, y, y_hat)` the shared loop calls once per minibatch."""

    def __init__(self, w: Tensor, b: Tensor, lr: float, loss: RegressionLoss) -> None:
        self.w, self.b, self.lr, self.loss = w, b, lr, loss

    def step(self, X: Tensor, y: Tensor, y_hat: Tensor) -> None:
        """Update w and b in place from one minibatch."""
        with torch.no_grad():
            grad_w, grad_b = linreg_grad(X, y, y_hat, self.loss)
            self.w -= self.lr * grad_w
            self.b -= self.lr * grad_b


def init_params(num_inputs: int, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """The book's initialisation, w ~ N(0, 0.01²) `[d, 1]` and b = 0, as plain tensors (no autograd)."""
    return torch.normal(0.0, 0.01, size=(num_inputs, 1), generator=generator), torch.zeros(1)


def fit(
    features: Tensor,
    labels: Tensor,
    *,
    loss: str = "squared",
    huber_delta: float = 1.0,
    lr: float = 0.03,
    num_epochs: int = 3,
    batch_size: int = 10,
    seed: int = 0,
    on_epoch_end: EpochCallback | None = None,
    callbacks: Sequence[Callback] = (),
    init: tuple[Tensor, Tensor] | None = None,
    sampling: str = "shuffle",
) -> tuple[Tensor, Tensor, list[float]]:
    """Fit linear regression with hand-derived gradients (same arguments and results as the scratch `fit`): w `[d]`,
    b (0-d) and the per-epoch training-set losses."""
    labels = labels.reshape(-1, 1)
    loss_fn = get_loss(loss, delta=huber_delta, reduction="none")
    generator = torch.Generator().manual_seed(seed)
    w, b = init_params(features.shape[1], generator)
    if init is not None:  # a warm start; the generator still drew the same numbers, so shuffling is unchanged
        with torch.no_grad():
            w.copy_(init[0].reshape(w.shape)), b.copy_(init[1].reshape(b.shape))
    updater = GradientDescentStep(w, b, lr, loss_fn)
    train_iter = load_array((features, labels), batch_size, generator=generator, sampling=sampling)

    def net(X: Tensor) -> Tensor:
        return linreg(X, w, b)

    with torch.no_grad():
        losses = train_regression(
            net, train_iter, features, labels, loss_fn, num_epochs, updater, on_epoch_end, callbacks
        )
    return w.reshape(-1).clone(), b.reshape(()).clone(), losses
