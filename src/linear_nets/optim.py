"""Optimisers and learning-rate schedules for the concise models.

Weight decay (L2) adds (wd / 2) ||W||² to the mean loss, so its gradient adds wd * W to dl/dW (d2l 3.7's
exercise, chapter 4's "weight decay"). It is applied to the weights only: decaying the bias pulls every class score
towards 0 and buys nothing (d2l's `nn.Linear` example also decays only the weight).

Optimisers (`--optimizer`):
- `sgd`: W <- W - lr g (the book's);
- `momentum`: Nesterov momentum 0.9, v <- 0.9 v + g, W <- W - lr (g + 0.9 v);
- `adam`: Adam (Kingma & Ba) with its default betas;
- `lbfgs`: full-batch L-BFGS with a strong-Wolfe line search (scikit-learn's default solver for this model). It
  needs the whole training set per step, so `linear_nets.pipeline.fit.fit_softmax` runs it with its own small loop.

Schedules (`--schedule`), a pure function of the epoch (`lr_at`), for every implementation: `constant`; `step`
(lr x 0.1 after 1/2 and 3/4 of the epochs); `cosine` (lr_t = lr (1 + cos(pi t / T)) / 2 after t of T epochs).
"""

from __future__ import annotations

import math

import torch

from linear_nets.checks import one_of
from linear_nets.choices import OPTIMIZERS, SCHEDULES

MOMENTUM = 0.9
LBFGS_ITERS = 10
"""L-BFGS iterations per `step()`: one "epoch" of full-batch L-BFGS (10 epochs = scikit-learn's max_iter=100)."""


def make_optimizer(
    linear: torch.nn.Linear, name: str = "sgd", lr: float = 0.1, weight_decay: float = 0.0
) -> torch.optim.Optimizer:
    """The optimiser `name` (one of `OPTIMIZERS`) over `linear`'s weight (decayed) and bias (not decayed).

    Example:
        >>> opt = make_optimizer(torch.nn.Linear(3, 2), "adam", lr=1e-3, weight_decay=1e-4)
        >>> type(opt).__name__, [g["weight_decay"] for g in opt.param_groups]
        ('Adam', [0.0001, 0.0])
    """
    one_of("optimizer", name, OPTIMIZERS)
    groups = [{"params": [linear.weight], "weight_decay": weight_decay}, {"params": [linear.bias], "weight_decay": 0.0}]
    # foreach=False: for two small tensors a plain per-tensor update costs less per step than batching them into
    # foreach kernels, torch's default (the same arithmetic; measured in benchmarks/RESULTS.md)
    if name == "sgd":
        return torch.optim.SGD(groups, lr=lr, foreach=False)
    if name == "momentum":
        return torch.optim.SGD(groups, lr=lr, momentum=MOMENTUM, nesterov=True, foreach=False)
    if name == "adam":
        return torch.optim.Adam(groups, lr=lr, foreach=False)
    return FullBatchLBFGS(linear, lr, weight_decay)


class FullBatchLBFGS(torch.optim.LBFGS):
    """L-BFGS with a strong-Wolfe line search on the mean loss + (weight_decay / 2) ||W||² (`penalty`): torch's
    L-BFGS has one parameter group and no weight_decay option. The training loop gives it the whole training set
    as one batch; one `step(closure)` runs `LBFGS_ITERS` iterations (one "epoch"): each call re-evaluates the loss
    before iterating, so one iteration per call would pay for an extra full-batch pass every iteration."""

    def __init__(self, linear: torch.nn.Linear, lr: float, weight_decay: float) -> None:
        super().__init__([linear.weight, linear.bias], lr=lr, max_iter=LBFGS_ITERS, history_size=10,
                         line_search_fn="strong_wolfe", tolerance_grad=0.0, tolerance_change=0.0)  # fmt: skip
        self.weight, self.weight_decay = linear.weight, weight_decay

    def penalty(self) -> torch.Tensor:
        """(weight_decay / 2) ||W||², added to the mean loss the line search minimises."""
        return self.weight_decay / 2 * self.weight.square().sum()


def lr_at(schedule: str, lr: float, epoch: int, epochs: int) -> float:
    """The learning rate of epoch `epoch` (1-based) of `epochs` under `schedule` (see the module's docstring; cosine's
    t = epoch - 1 epochs are done): a resumed run recomputes its rate from the epoch, nothing to save or replay.

    Example:
        >>> [round(lr_at("cosine", 1.0, e, 4), 3) for e in range(1, 5)]
        [1.0, 0.854, 0.5, 0.146]
        >>> [lr_at("step", 1.0, e, 4) for e in range(1, 5)]
        [1.0, 1.0, 0.1, 0.010000000000000002]
    """
    one_of("schedule", schedule, SCHEDULES)
    done = epoch - 1
    if schedule == "step":
        milestones = sorted({max(1, epochs // 2), max(1, (3 * epochs) // 4)})
        return lr * 0.1 ** sum(1 for m in milestones if m <= done)
    if schedule == "cosine":
        return lr * (1 + math.cos(math.pi * done / epochs)) / 2
    return lr
