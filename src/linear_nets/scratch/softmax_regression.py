"""Softmax regression from scratch (d2l 3.6): parameters with autograd, the book's softmax, cross-entropy and `sgd`.

Model: y_hat = softmax(XW + b) with X flattened to `[n, 784]`, W `[784, 10]` ~ N(0, 0.01²), b = 0.
Loss: l_i = -log y_hat[i, y_i]. Update: minibatch SGD on the summed loss, divided by the batch size; with weight
decay wd the mean loss gains (wd / 2) ||W||², so the step also subtracts lr * wd * W.
These are the naive forms, as in the book; section 3.7's stable ones live in `linear_nets.softmax`.
"""

from __future__ import annotations

import torch
from torch import Tensor

from linear_nets.models import WeightsAndBias, init_params
from linear_nets.scratch.linear_regression import sgd
from linear_nets.softmax import cross_entropy, softmax

__all__ = ["SoftmaxRegression", "init_params"]


class SoftmaxRegression(WeightsAndBias):
    """softmax(XW + b) from scratch: `train(model.net, ..., model.loss, num_epochs, model.updater)`.

    Built as every `WeightsAndBias` is (W and b requiring gradients; `lr` is `sgd`'s).

    Example:
        >>> model = SoftmaxRegression(num_inputs=4, num_outputs=3)
        >>> y_hat = model.net(torch.randn(2, 4))
        >>> y_hat.shape, torch.allclose(y_hat.sum(dim=1), torch.ones(2))
        (torch.Size([2, 3]), True)
    """

    def logits(self, X: Tensor) -> Tensor:
        """O = XW + b `[n, q]` of a batch `X` `[n, ...]` flattened to `[n, num_inputs]`."""
        return torch.matmul(X.reshape((-1, self.W.shape[0])), self.W) + self.b

    def net(self, X: Tensor) -> Tensor:
        """Class probabilities softmax(XW + b) `[n, q]`, with the book's (naive) softmax."""
        return softmax(self.logits(X))

    def loss(self, y_hat: Tensor, y: Tensor) -> Tensor:
        """The book's cross-entropy of the probabilities `y_hat`, per example."""
        return cross_entropy(y_hat, y)

    def updater(self, batch_size: int) -> None:
        """Minibatch SGD on W and b after `loss(...).sum().backward()` (plus weight decay on W, if any)."""
        if self.weight_decay:
            # W.grad is of the *summed* loss and sgd divides by batch_size: add batch_size * wd * W, so the step
            # subtracts lr * wd * W, the gradient of (wd / 2) ||W||² on the mean loss.
            with torch.no_grad():
                self.W.grad.add_(self.W, alpha=self.weight_decay * batch_size)
        sgd([self.W, self.b], self.lr, batch_size)
