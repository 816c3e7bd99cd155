"""Concise linear regression with `torch.nn` and `torch.optim` (d2l 3.3).

`nn.Linear(d, 1)` is the model, `torch.optim.SGD` the optimiser and `load_array` the data pipeline. The loss
is one of the `nn.Module` losses from `linear_nets.losses`, used exactly like `nn.MSELoss`: torch's own differ from
the chapter's definitions by a factor (see `linear_nets.losses`), which would double the effective learning rate
and make the printed losses disagree with the from-scratch implementation.

Example (the 3.3 recipe):
    >>> from linear_nets.data.synthetic import synthetic_data
    >>> X, y = synthetic_data([2, -3.4], 4.2, 1000, generator=torch.Generator().manual_seed(0))
    >>> w, b, losses = fit(X, y, lr=0.03, num_epochs=3, batch_size=10)
    >>> bool((w - torch.tensor([2, -3.4])).abs().max() < 0.01), abs(b.item() - 4.2) < 0.01
    (True, True)
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from linear_nets.data.synthetic import load_array
from linear_nets.losses import get_loss
from linear_nets.training import Callback, EpochCallback, train_regression


def model(num_inputs: int, lr: float, generator: torch.Generator,
          init: tuple[Tensor, Tensor] | None = None) -> tuple[nn.Sequential, torch.optim.SGD]:  # fmt: skip
    """The book's `nn.Linear(d, 1)`, weights ~ N(0, 0.01²) drawn from `generator`, bias 0 (or `init` = (w, b), a warm
    start: the generator still draws the same numbers, so the shuffling that follows is unchanged), and its SGD.

    Example:
        >>> net, trainer = model(3, 0.03, torch.Generator().manual_seed(0))
        >>> net(torch.zeros(2, 3)).shape, type(trainer).__name__
        (torch.Size([2, 1]), 'SGD')
    """
    net = nn.Sequential(nn.Linear(num_inputs, 1))
    with torch.no_grad():
        net[0].weight.normal_(0, 0.01, generator=generator)
        net[0].bias.zero_()
        if init is not None:
            net[0].weight.copy_(init[0].reshape(1, -1)), net[0].bias.copy_(init[1].reshape(1))
    return net, torch.optim.SGD(net.parameters(), lr=lr)


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
    """Fit `nn.Linear` with `torch.optim.SGD` (same arguments and results as the scratch `fit`): w `[d]`, b (0-d) and
    the per-epoch training-set losses."""
    labels = labels.reshape(-1, 1)
    # The shared loop wants one loss per example and takes the mean itself before backward().
    loss_fn = get_loss(loss, delta=huber_delta, reduction="none")
    generator = torch.Generator().manual_seed(seed)
    net, trainer = model(features.shape[1], lr, generator, init)
    data = load_array((features, labels), batch_size, generator=generator, sampling=sampling)
    losses = train_regression(net, data, features, labels, loss_fn, num_epochs, trainer, on_epoch_end, callbacks)
    return net[0].weight.detach().reshape(-1).clone(), net[0].bias.detach().reshape(()).clone(), losses
