"""Concise softmax regression (d2l 3.7): `nn.Flatten` + `nn.Linear`, `nn.CrossEntropyLoss`, `torch.optim.SGD`.

`nn.CrossEntropyLoss` takes the logits and computes log-sum-exp internally: the stable cross-entropy of
`linear_nets.softmax`, so the network ends at the linear layer, without a softmax.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from linear_nets.models import SoftmaxModel, init_params
from linear_nets.optim import make_optimizer


class SoftmaxRegression(SoftmaxModel):
    """`nn.Sequential(nn.Flatten(), nn.Linear(num_inputs, num_outputs))` trained with SGD.

    Use as `train(model.net, ..., model.loss, num_epochs, model.updater)`. Built from the arguments of the other
    implementations (`models.WeightsAndBias`; `init_std` is the book's `nn.init.normal_(m.weight, std=0.01)`, the
    weight decay torch.optim's), and the `optimizer`: "sgd" (the book's), "momentum", "adam" or "lbfgs" (see
    `linear_nets.optim`; L-BFGS is full-batch and trained by `linear_nets.pipeline.fit.fit_softmax`).

    Example:
        >>> model = SoftmaxRegression()
        >>> model.net(torch.zeros(2, 1, 28, 28)).shape
        torch.Size([2, 10])
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
        optimizer: str = "sgd",
    ) -> None:
        self.num_inputs, self.num_outputs = num_inputs, num_outputs
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(num_inputs, num_outputs))
        # Drawn as the scratch model draws W [inputs, outputs], then stored transposed as nn.Linear keeps it
        # ([outputs, inputs]): one seed gives all three implementations the same start.
        W, b = init_params(num_inputs, num_outputs, init_std=init_std, generator=generator, requires_grad=False)
        self.load_state_tensors({"W": W, "b": b})
        self.cross_entropy = nn.CrossEntropyLoss(reduction="none")
        self.updater = make_optimizer(self.net[1], optimizer, lr, weight_decay)

    def logits(self, X: Tensor) -> Tensor:
        """O = XW + b: the network's output."""
        return self.net(X)

    def parameters(self) -> list[Tensor]:
        return list(self.net.parameters())

    def set_lr(self, lr: float) -> None:
        for group in self.updater.param_groups:
            group["lr"] = lr

    def loss(self, y_hat: Tensor, y: Tensor) -> Tensor:
        """`nn.CrossEntropyLoss(reduction='none')` of the logits `y_hat` (the fit checked the labels once)."""
        return self.cross_entropy(y_hat, y)

    def state_tensors(self) -> dict[str, Tensor]:
        """The parameters in the layout every implementation saves: {"W": [d, q], "b": [q]} (W is weightᵀ)."""
        linear = self.net[1]
        return {"W": linear.weight.detach().T, "b": linear.bias.detach()}

    def load_state_tensors(self, tensors: dict[str, Tensor]) -> None:
        with torch.no_grad():
            self.net[1].weight.copy_(tensors["W"].T)
            self.net[1].bias.copy_(tensors["b"])

    def to(self, device: torch.device | str) -> SoftmaxRegression:
        """Move the network to `device`; the optimiser keeps working (it holds the same parameter objects)."""
        self.net.to(device)
        return self
