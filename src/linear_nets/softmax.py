"""Softmax and cross-entropy, naive and stable (d2l sections 3.4, 3.6 and 3.7).

The naive forms are the book's definitions: `softmax` exponentiates the logits directly and `cross_entropy` takes
the log of the picked probability. For logits of a few hundred `exp` overflows to inf (inf / inf = NaN), and for
very negative ones the picked probability underflows to 0 (log 0 = -inf): the lesson of section 3.7. The stable
forms subtract each row's maximum first (softmax is unchanged by a shift: exp(o - m) / sum exp(o - m)) and compute
the cross-entropy from the logits with log-sum-exp, never taking the log of a rounded probability.

Every function takes a batch: logits `O = XW + b` (`logits` in code) of shape `[n, q]`, one row per example, and
labels `y` of shape `[n]`.
"""

from __future__ import annotations

import torch
from torch import Tensor


def softmax(X: Tensor) -> Tensor:
    """The book's softmax: softmax(X)_ij = exp(X_ij) / sum_k exp(X_ik). Overflows for logits above ~88 (float32).

    Example:
        >>> softmax(torch.tensor([[0.0, 0.0]]))
        tensor([[0.5000, 0.5000]])
        >>> softmax(torch.tensor([[1000.0, 0.0]]))  # exp(1000) = inf, and inf / inf = nan
        tensor([[nan, 0.]])
    """
    X_exp = torch.exp(X)
    partition = X_exp.sum(dim=1, keepdim=True)
    return X_exp / partition


def stable_softmax(logits: Tensor) -> Tensor:
    """Softmax after subtracting each row's maximum: exp(o_ij - m_i) / sum_k exp(o_ik - m_i), m_i = max_k o_ik.

    The largest exponent is exp(0) = 1, so nothing overflows and the sum is at least 1.

    Example:
        >>> stable_softmax(torch.tensor([[1000.0, 0.0]]))
        tensor([[1., 0.]])
    """
    O_exp = torch.exp(logits - logits.amax(dim=1, keepdim=True))
    return O_exp / O_exp.sum(dim=1, keepdim=True)


def cross_entropy(y_hat: Tensor, y: Tensor) -> Tensor:
    """The book's cross-entropy of probabilities: l_i = -log y_hat[i, y_i]. A rounded-to-0 probability gives inf.

    Example:
        >>> cross_entropy(torch.tensor([[0.1, 0.3, 0.6], [0.3, 0.2, 0.5]]), torch.tensor([0, 2]))
        tensor([2.3026, 0.6931])
    """
    return -torch.log(y_hat.gather(1, y.unsqueeze(1)).squeeze(1))


def stable_cross_entropy(logits: Tensor, y: Tensor) -> Tensor:
    """Cross-entropy from logits with log-sum-exp: l_i = log sum_k exp(o_ik - m_i) - (o_iy_i - m_i), m_i = max_k o_ik.

    Equals `-log(softmax(O)[i, y_i])` in exact arithmetic and `torch.nn.functional.cross_entropy(O, y,
    reduction='none')` in floating point; finite for any finite logits.

    Example:
        >>> stable_cross_entropy(torch.tensor([[1000.0, 0.0], [0.0, 1000.0]]), torch.tensor([0, 0]))
        tensor([   0., 1000.])
    """
    return _cross_entropy_and_exps(logits, y)[0]


def stable_cross_entropy_and_softmax(logits: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
    """`(stable_cross_entropy(O, y), stable_softmax(O))` from one pass: both need the same shifted exponentials.

    A hand-written backward pass needs softmax(O) right after the loss (the gradient is softmax(O) - onehot(y)).

    Example:
        >>> loss, probs = stable_cross_entropy_and_softmax(torch.tensor([[0.0, 0.0]]), torch.tensor([1]))
        >>> loss, probs
        (tensor([0.6931]), tensor([[0.5000, 0.5000]]))
    """
    loss, exps, partition = _cross_entropy_and_exps(logits, y)
    return loss, exps / partition


def _cross_entropy_and_exps(logits: Tensor, y: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """(the cross-entropy, exp(O - m), sum_k exp(o_k - m)) with m the row maxima. The shifted logits are <= 0 with a 0
    in every row, so the partition lies in [1, q]: no overflow, and no log(0)."""
    shifted = logits - logits.amax(dim=1, keepdim=True)
    exps = shifted.exp()
    partition = exps.sum(dim=1, keepdim=True)
    return partition.log().squeeze(1) - shifted.gather(1, y.unsqueeze(1)).squeeze(1), exps, partition
