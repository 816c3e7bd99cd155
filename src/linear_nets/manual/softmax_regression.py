"""Softmax regression with its hand-derived gradient: no autograd anywhere (the math behind d2l 3.4 and 3.6).

Model: O = XW + b, y_hat = softmax(O); loss: l = (1/n) sum_i -log y_hat[i, y_i].
Differentiating, dl/dO = (softmax(O) - onehot(y)) / n, so the gradients are

    dl/dW = Xᵀ (softmax(O) - onehot(y)) / n        dl/db = sum_i (softmax(O) - onehot(y))_i / n

and one minibatch SGD step is W <- W - lr dl/dW, b <- b - lr dl/db. `gradients` equals autograd's in float64.
Weight decay wd adds (wd / 2) ||W||² to l, hence wd W to dl/dW: the step becomes W <- (1 - lr wd) W - lr Xᵀ G.
"""

from __future__ import annotations

import torch
from torch import Tensor

from linear_nets.errors import ConfigError
from linear_nets.models import WeightsAndBias, check_lr, init_params
from linear_nets.optim import check_weight_decay
from linear_nets.softmax import check_inputs, check_labels, stable_cross_entropy_and_softmax, stable_softmax


def logit_gradient(logits: Tensor, y: Tensor, *, probs: Tensor | None = None, total: int | None = None) -> Tensor:
    """dl/dO = (softmax(O) - onehot(y)) / n: the gradient of the mean cross-entropy with respect to the logits.

    Args:
        logits: `O`, `[n, q]`.
        y: true classes `[n]`.
        probs: softmax(O) if already computed (it is then updated in place and returned), else None.
        total: divide by this instead of n (1: the gradient of the *summed* loss, which data-parallel processes add
            up before dividing by the whole batch's size).

    Example:
        >>> logit_gradient(torch.zeros(2, 2), torch.tensor([0, 1]))
        tensor([[-0.2500,  0.2500],
                [ 0.2500, -0.2500]])
    """
    if probs is None:
        check_labels(y, logits.shape[1], n=logits.shape[0])
        probs = stable_softmax(logits)
    G = probs
    # subtracting onehot(y) touches one entry per row: scatter -1 there instead of building the one-hot matrix
    G.scatter_add_(1, y.unsqueeze(1), torch.full((y.shape[0], 1), -1.0, dtype=G.dtype, device=G.device))
    total = y.shape[0] if total is None else total
    return G if total == 1 else G.div_(total)


def gradients(
    X: Tensor, y: Tensor, logits: Tensor, *, W: Tensor | None = None, weight_decay: float = 0.0
) -> tuple[Tensor, Tensor]:
    """Gradients of the mean cross-entropy of softmax(XW + b) with respect to W and b, by hand.

    Args:
        X: inputs `[n, d]`.
        y: true classes `[n]`.
        logits: `O = XW + b`, `[n, q]`.
        W: the weights `[d, q]`; needed only with `weight_decay`.
        weight_decay: wd >= 0; the loss is then the mean cross-entropy + (wd / 2) ||W||².

    Returns `(dl/dW [d, q], dl/db [q])`: `Xᵀ G (+ wd W)` and the column sums of G, with G = `logit_gradient(O, y)`.

    Example:
        >>> grad_W, grad_b = gradients(torch.eye(2), torch.tensor([0, 1]), torch.zeros(2, 2))
        >>> grad_b
        tensor([0., 0.])
    """
    G = logit_gradient(logits, y)
    grad_W = X.T @ G
    if check_weight_decay(weight_decay):
        if W is None:
            raise ConfigError("gradients: weight_decay needs the weights W")
        grad_W = grad_W + weight_decay * W
    return grad_W, G.sum(dim=0)


class SoftmaxRegression(WeightsAndBias):
    """softmax(XW + b) updated with `gradients` (no autograd): `train(model.net, ..., model.loss, n, model.updater)`.

    W `[num_inputs, num_outputs]` ~ N(0, init_std²) and b = 0, drawn from `generator` exactly as the scratch model
    draws them, so one seed gives both the same start. `net` returns the logits O (not probabilities): the loss is
    the stable cross-entropy, and the class with the largest logit is the class with the largest probability.

    Args:
        num_inputs: values per example (784 for 28 x 28 images).
        num_outputs: number of classes q.
        lr: learning rate of the SGD step (> 0).
        init_std: standard deviation of the initial weights.
        generator: a seeded `torch.Generator` for the initial weights.
        weight_decay: L2 penalty wd >= 0 on W (not b): the mean loss gains (wd / 2) ||W||².

    Example:
        >>> model = SoftmaxRegression(num_inputs=4, num_outputs=3, lr=0.1)
        >>> X, y = torch.randn(8, 4), torch.randint(0, 3, (8,))
        >>> before = model.loss(model.net(X), y).mean()
        >>> for _ in range(50):
        ...     model.step(X, y, model.net(X))
        >>> bool(model.loss(model.net(X), y).mean() < before)
        True
    """

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
        self.num_inputs, self.num_outputs, self.lr = num_inputs, num_outputs, check_lr(lr)
        self.weight_decay = check_weight_decay(weight_decay)
        W, self.b = init_params(num_inputs, num_outputs, init_std=init_std, generator=generator, requires_grad=False)
        # W is [d, q] as in the book, stored column-major (Wᵀ row-major, as nn.Linear keeps its weight): the two
        # products below then run as [q, d] x [d, n] and [q, n] x [n, d], about 3x faster on a CPU than the
        # same products in the other layout (benchmarks/RESULTS.md).
        self.W = W.T.contiguous().T
        self._saved: tuple[Tensor | None, Tensor | None, Tensor | None] = (None, None, None)

    def net(self, X: Tensor) -> Tensor:
        """Logits O = XW + b `[n, q]` of a batch `X` `[n, ...]` flattened to `[n, num_inputs]`.

        Computed as Oᵀ = WᵀXᵀ + b (the fast layout; see `__init__`), so O comes back column-major.
        """
        check_inputs(X, self.num_inputs)
        X = X.reshape(-1, self.num_inputs)
        return torch.addmm(self.b.unsqueeze(1), self.W.T, X.T).T

    def logits(self, X: Tensor) -> Tensor:
        """O = XW + b: the model's `net` (it returns logits)."""
        return self.net(X)

    def loss(self, y_hat: Tensor, y: Tensor) -> Tensor:
        """Per-example cross-entropy of the logits `y_hat` (stable: log-sum-exp).

        Like autograd saving tensors for backward, it keeps softmax(O) for the `step` that follows on the same
        logits and labels: the loss and the gradient share their exponentials.
        """
        loss, probs = stable_cross_entropy_and_softmax(y_hat, y)
        self._saved = (y_hat, y, probs)
        return loss

    def step(self, X: Tensor, y: Tensor, y_hat: Tensor) -> None:
        """One SGD step at the logits `y_hat = net(X)`: W -= lr Xᵀ G, b -= lr sum_i G_i, G = `logit_gradient`."""
        G = logit_gradient(y_hat, y, probs=self._saved_probs(y_hat, y))
        if self.weight_decay:
            self.W.mul_(1.0 - self.lr * self.weight_decay)  # W - lr wd W, before the data term below
        # addmm_ updates W in place: W + (-lr) Xᵀ G, without a temporary for dl/dW
        self.W.addmm_(X.reshape(-1, self.num_inputs).T, G, alpha=-self.lr)
        self.b.sub_(G.sum(dim=0), alpha=self.lr)

    def _saved_probs(self, y_hat: Tensor, y: Tensor) -> Tensor | None:
        """softmax(O) kept by `loss` on these very logits and labels, else None (then the gradient computes it).
        Used once: `logit_gradient` overwrites it."""
        saved_logits, saved_y, probs = self._saved
        self._saved = (None, None, None)
        return probs if saved_logits is y_hat and saved_y is y else None

    def summed_gradients(self, X: Tensor, y: Tensor, y_hat: Tensor) -> tuple[Tensor, Tensor]:
        """Gradients of the batch's *summed* cross-entropy, `(Xᵀ D [d, q], Σ_i D_i [q])` with D = softmax(O) −
        onehot(y): what data-parallel processes add up (one all-reduce) before `apply_gradients` divides by the
        whole batch's size. Follows `loss` on the same logits, like `step`."""
        D = logit_gradient(y_hat, y, probs=self._saved_probs(y_hat, y), total=1)
        return X.reshape(-1, self.num_inputs).T @ D, D.sum(dim=0)

    def apply_gradients(self, grad_W: Tensor, grad_b: Tensor) -> None:
        """One SGD step from the mean gradients of the data term: W <- (1 − lr wd) W − lr grad_W, b <- b − lr grad_b."""
        if self.weight_decay:
            self.W.mul_(1.0 - self.lr * self.weight_decay)
        self.W.sub_(grad_W, alpha=self.lr)
        self.b.sub_(grad_b, alpha=self.lr)

    @property
    def updater(self) -> SoftmaxRegression:
        """The model itself: a `training.GradientStep`, since it computes its own gradient in `step`."""
        return self
