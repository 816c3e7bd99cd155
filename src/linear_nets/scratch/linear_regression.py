"""Linear regression from scratch with autograd (d2l 3.2).

The model is y_hat = Xw + b; the loss comes from `linear_nets.losses` (the book's `squared_loss` by default);
autograd computes the gradient of the summed minibatch loss and `sgd` takes the step
(w, b) <- (w, b) - lr / |B| * grad. Training runs in the package's one loop, `linear_nets.training.train`.

Example (the 3.2 recipe):
    >>> from linear_nets.data.synthetic import synthetic_data
    >>> X, y = synthetic_data([2, -3.4], 4.2, 1000, generator=torch.Generator().manual_seed(0))
    >>> w, b, losses = fit(X, y, lr=0.03, num_epochs=3, batch_size=10)
    >>> bool((w - torch.tensor([2, -3.4])).abs().max() < 0.01), abs(b.item() - 4.2) < 0.01
    (True, True)
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

import torch
from torch import Tensor

from linear_nets.data.batches import ArrayLoader
from linear_nets.data.synthetic import data_iter
from linear_nets.losses import get_loss, squared_loss
from linear_nets.training import Callback, EpochCallback, train_regression

__all__ = ["fit", "init_params", "linreg", "sgd", "squared_loss"]


def linreg(X: Tensor, w: Tensor, b: Tensor) -> Tensor:
    """The linear regression model: y_hat = Xw + b, for `X [n, d]`, `w [d, 1]`, `b [1]`.

    Example:
        >>> linreg(torch.ones(2, 3), torch.ones(3, 1), torch.zeros(1))
        tensor([[3.],
                [3.]])
    """
    return torch.matmul(X, w) + b


def sgd(params: Iterable[Tensor], lr: float, batch_size: int) -> None:
    """Minibatch stochastic gradient descent: param <- param - lr * param.grad / batch_size, then zero the grad.

    `param.grad` holds the gradient of the *summed* minibatch loss, hence the division by `batch_size`.

    Example:
        >>> w = torch.ones(2, requires_grad=True); (3 * w).sum().backward()
        >>> sgd([w], lr=0.1, batch_size=3); w
        tensor([0.9000, 0.9000], requires_grad=True)
    """
    with torch.no_grad():
        for param in params:
            param -= lr * param.grad / batch_size
            param.grad.zero_()


def init_params(num_inputs: int, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """The book's initialisation: w ~ N(0, 0.01²) of shape `[d, 1]`, b = 0, both requiring gradients."""
    w = torch.normal(0.0, 0.01, size=(num_inputs, 1), generator=generator).requires_grad_(True)
    b = torch.zeros(1, requires_grad=True)
    return w, b


class _EveryEpoch:
    """The book's one-pass `data_iter`, called afresh for each pass (epoch)."""

    def __init__(self, batch_size: int, features: Tensor, labels: Tensor, generator: torch.Generator) -> None:
        self.args = (batch_size, features, labels, generator)

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        return data_iter(*self.args)

    def __len__(self) -> int:
        return -(-len(self.args[1]) // self.args[0])


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
    """Fit linear regression from scratch: `linreg`, the chosen loss, `data_iter` and `sgd` (d2l 3.2).

    Fits X `[n, d]` to y `[n, 1]` (or `[n]`) with `loss` 'squared', 'l1' or 'huber' (threshold `huber_delta`) and
    the SGD recipe `lr`, `num_epochs`, `batch_size` (book: 0.03, 3, 10); `seed` fixes the initialisation and the
    shuffling, `init` = (w [d], b) replaces the initialisation (a warm start). `on_epoch_end(epoch, loss)` and
    `callbacks` (`training.Callback`s; the record's `train_set_loss`) see the loss over the whole training set after
    each epoch. `sampling` cuts each epoch into minibatches (`data.batches.SAMPLING_MODES`): "shuffle" is the book's
    `data_iter`, the others an `ArrayLoader` drawing from the same generator.
    Returns w `[d]`, b (0-d) and the per-epoch training-set losses.
    """
    labels = labels.reshape(-1, 1)
    loss_fn = get_loss(loss, delta=huber_delta, reduction="none")
    generator = torch.Generator().manual_seed(seed)
    w, b = init_params(features.shape[1], generator)
    if init is not None:  # a warm start; the generator still drew the same numbers, so shuffling is unchanged
        with torch.no_grad():
            w.copy_(init[0].reshape(w.shape)), b.copy_(init[1].reshape(b.shape))
    if sampling == "shuffle":
        train_iter = _EveryEpoch(batch_size, features, labels, generator)
    else:
        train_iter = ArrayLoader((features, labels), batch_size, shuffle=True, generator=generator, sampling=sampling)

    def net(X: Tensor) -> Tensor:
        return linreg(X, w, b)

    def updater(batch_size: int) -> None:
        sgd([w, b], lr, batch_size)

    losses = train_regression(net, train_iter, features, labels, loss_fn, num_epochs, updater, on_epoch_end, callbacks)
    return w.detach().reshape(-1), b.detach().reshape(()), losses
