"""What keeps a classifier honest (d2l exercise 3.7.2): a validation split and standardisation.

`train_val_split` holds out a stratified, seeded validation set, so hyperparameters and the stopping epoch
(`linear_nets.pipeline.callbacks.EarlyStopping`) are chosen without looking at the test set. `Standardizer` rescales
each pixel to mean 0 and standard deviation 1 with statistics of the training split only; `Standardized` wraps a
model so that training, evaluation and prediction all see standardised inputs. `FeatureStats` does it for tables.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from linear_nets.checks import check_inputs
from linear_nets.models import SoftmaxModel
from linear_nets.training import GradientStep


def train_val_split(labels: Tensor, val_fraction: float = 0.1, seed: int = 0) -> tuple[Tensor, Tensor]:
    """Indices `(train, val)` of a stratified, seeded split: each class gives round(n_c * val_fraction) examples.

    Every class keeps its share in both parts (6,000 per class in Fashion-MNIST: 600 to validation at 0.1); the
    two index sets are disjoint, cover every example, and are sorted (so a split of the data keeps file order).
    `labels` `[n]` are the classes, `val_fraction` (between 0 and 1) each one's share held out, `seed` picks which.
    A small class or a fraction near 0 or 1 may leave a part empty: the fit refuses that (`checks.check_split`).

    Example:
        >>> train, val = train_val_split(torch.tensor([0, 0, 0, 0, 1, 1, 1, 1]), 0.25, seed=0)
        >>> len(train), len(val), sorted(torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])[val].tolist())
        (6, 2, [0, 1])
    """
    generator = torch.Generator().manual_seed(seed)
    val_parts = []
    for c in torch.unique(labels).tolist():
        members = torch.nonzero(labels == c).squeeze(1)
        shuffled = members[torch.randperm(members.numel(), generator=generator)]
        val_parts.append(shuffled[: round(members.numel() * val_fraction)])
    val = torch.cat(val_parts).sort().values
    held_out = torch.zeros(labels.numel(), dtype=torch.bool)
    held_out[val] = True
    return torch.nonzero(~held_out).squeeze(1), val


class Standardizer(nn.Module):
    """Per-pixel standardisation x -> (x - mean) / std, with `mean`, `std` fitted on training images only.

    Inputs `[n, ...]` come out flattened to `[n, d]`. `mean` and `std` are buffers (`state_dict()` holds them, so a
    checkpoint saves them with the model). Pixels that barely vary (Fashion-MNIST's corners are almost always 0) get
    std = `eps` rather than ~0, so a faint pixel at test time is not blown up a thousandfold.

    Example:
        >>> s = Standardizer.fit(torch.tensor([[0.0, 1.0], [2.0, 1.0]]))
        >>> s.mean, s.std
        (tensor([1., 1.]), tensor([1.0000, 0.0100]))
        >>> s(torch.tensor([[3.0, 1.0]]))
        tensor([[2., 0.]])
    """

    EPS = 0.01

    def __init__(self, mean: Tensor, std: Tensor) -> None:
        super().__init__()
        dtype = torch.float64 if mean.dtype == torch.float64 else torch.float32  # float64 stays: see fit_transform
        self.register_buffer("mean", mean.to(dtype))
        self.register_buffer("std", std.to(dtype))

    @classmethod
    def fit(cls, X: Tensor, eps: float = EPS) -> Standardizer:
        """Fit on training inputs `X` `[n, ...]` (uint8 images are read as x / 255, as `ArrayLoader` serves them)."""
        return cls.fit_transform(X, eps)[0]

    @classmethod
    def fit_transform(cls, X: Tensor, eps: float = EPS, weights: Tensor | None = None) -> tuple[Standardizer, Tensor]:
        """Fit on training inputs `X` `[n, ...]` and return it standardised too: `(standardizer, Z [n, d])`, in place
        on one float32 copy of `X` (float64 stays float64: the scikit-learn estimators), about a third of the cost
        of fitting and then calling the standardizer.

        `eps` floors each std (pixels: a faint pixel must not be blown up); `eps=0` floors nothing and gives a
        constant column std 1 instead, as scikit-learn's StandardScaler does (tables, whose units are the user's).
        With `weights` w `[n]`, the mean and the variance are weighted means (sum_i w_i x_i / sum_i w_i): a row of
        weight 2 counts as that row twice.
        """
        Z = X.reshape(X.shape[0], -1).to(torch.float64 if X.dtype == torch.float64 else torch.float32)
        Z = Z.div_(255.0) if X.dtype == torch.uint8 else Z.clone()
        mean, std = _mean_std(Z, weights)
        std = std.clamp_min_(eps) if eps > 0 else torch.where(std > 0, std, torch.ones_like(std))
        return cls(mean, std), Z.div_(std)

    def forward(self, X: Tensor) -> Tensor:
        """(X - mean) / std of a batch `[n, ...]` (uint8 images are read as x / 255 first), flattened to `[n, d]`."""
        if X.dtype == torch.uint8:
            X = X.to(torch.float32) / 255.0
        check_inputs(X, self.mean.shape[0])  # the door of a standardised model, as of the others
        return (X.reshape(X.shape[0], -1) - self.mean) / self.std


class Standardized(SoftmaxModel):
    """A softmax model whose inputs are standardised first: `net(X) = model.net(standardizer(X))`.

    The same `SoftmaxModel` interface as the model it wraps: raw images in, the statistics of the training split
    applied every time (`logits`, `predict_proba`, `predict`, and `net` for the book's loop).

    Example:
        >>> from linear_nets.manual.softmax_regression import SoftmaxRegression
        >>> X = torch.rand(8, 4)
        >>> m = Standardized(SoftmaxRegression(4, 3), Standardizer.fit(X))
        >>> m.net(X).shape
        torch.Size([8, 3])
    """

    def __init__(self, model: object, standardizer: Standardizer) -> None:
        self.model, self.standardizer = model, standardizer
        self.loss, self.num_inputs, self.num_outputs = model.loss, model.num_inputs, model.num_outputs
        self.parameters, self.set_lr = model.parameters, model.set_lr  # the wrapped model's, as they are
        updater = model.updater
        # A hand-derived step sees X: the wrapper stands in for it (`step`). An Optimizer also has a `step` (so it
        # passes the GradientStep check): it never sees X, leave it as it is.
        hand_derived = isinstance(updater, GradientStep) and not isinstance(updater, torch.optim.Optimizer)
        self.updater = self if hand_derived else updater

    def net(self, X: Tensor) -> Tensor:
        """The wrapped model's `net` on the standardised `X`."""
        return self.model.net(self.standardizer(X))

    def logits(self, X: Tensor) -> Tensor:
        """The wrapped model's logits of the standardised `X`."""
        return self.model.logits(self.standardizer(X))

    def step(self, X: Tensor, y: Tensor, y_hat: Tensor, *weights: Tensor) -> None:
        """The wrapped model's hand-derived step (its `updater`) on the standardised `X` it was trained on."""
        self.model.updater.step(self.standardizer(X), y, y_hat, *weights)

    @property
    def mean(self) -> Tensor:
        return self.standardizer.mean

    @property
    def std(self) -> Tensor:
        return self.standardizer.std

    def state_tensors(self) -> dict[str, Tensor]:
        """The wrapped model's tensors plus `mean` and `std`: what a checkpoint or model file saves."""
        return {**self.model.state_tensors(), "mean": self.mean.detach(), "std": self.std.detach()}

    def load_state_tensors(self, tensors: dict[str, Tensor]) -> None:
        """Copy saved tensors in place: the model's, and the standardisation's `mean` and `std`."""
        self.model.load_state_tensors({k: v for k, v in tensors.items() if k not in ("mean", "std")})
        with torch.no_grad():
            self.standardizer.mean.copy_(tensors["mean"])
            self.standardizer.std.copy_(tensors["std"])

    def to(self, device: torch.device | str) -> Standardized:
        """Move the model and the statistics to `device`; return the wrapper."""
        self.model.to(device)
        self.standardizer.to(device)
        return self


@dataclass
class Moments:
    """Count, mean and sum of squared deviations M₂ of values arriving in chunks (rows of a matrix: per column),
    merged as n = nₐ + n_b, δ = m_b − mₐ, m = mₐ + δ·n_b/n, M₂ = M₂ₐ + M₂_b + δ²·nₐ·n_b/n (Chan et al.), which stays
    accurate where Σx² − n·m² would cancel. Works on numpy arrays and torch tensors alike.

    Example:
        >>> moments = Moments(); moments.add(torch.tensor([1.0, 2.0])); moments.add(torch.tensor([3.0, 4.0]))
        >>> moments.n, float(moments.mean), float(moments.m2)
        (4, 2.5, 5.0)
    """

    n: int = 0
    mean: Any = 0.0
    m2: Any = 0.0

    def add(self, values: Any) -> None:
        """Merge in one chunk (along its first axis)."""
        if len(values):
            mean = values.mean(0)
            self.merge(Moments(len(values), mean, ((values - mean) ** 2).sum(0)))

    def merge(self, other: Moments) -> None:
        n = self.n + other.n
        if other.n:
            delta = other.mean - self.mean
            self.m2 = self.m2 + other.m2 + delta * delta * (self.n * other.n / n)
            self.mean = self.mean + delta * (other.n / n)
        self.n = n


def power_of_two_scales(peak: Tensor) -> Tensor:
    """Per column, the power of two 2⁻ᵉ that brings its largest magnitude `peak` = m·2ᵉ (½ ≤ m < 1) to m (a column of
    zeros, which stays zero, gets ½). Multiplying by a power of two is exact in floating point: a statistic or a
    least-squares coefficient of the scaled columns is exactly the original's, scaled back.

    Example:
        >>> scales = power_of_two_scales(torch.tensor([3e200, 0.0, 0.75], dtype=torch.float64))
        >>> 0.5 <= 3e200 * scales[0].item() < 1, scales[1:].tolist()
        (True, [0.5, 1.0])
    """
    _, exponent = torch.frexp(torch.where(peak > 0, peak, torch.ones_like(peak)))
    return torch.ldexp(torch.ones_like(peak), -exponent)


def _mean_std(Z: Tensor, weights: Tensor | None) -> tuple[Tensor, Tensor]:
    """(Weighted) column means and population standard deviations of Z `[n, d]`, which is centred in place first
    (so E[x²] − E[x]² cannot cancel); the squares are taken on columns scaled by `power_of_two_scales` where they
    could overflow (inputs near 1e200 in float64, 1e19 in float32)."""
    share = None if weights is None else (weights / weights.sum()).to(Z.dtype).unsqueeze(1)
    mean = Z.mean(dim=0) if share is None else (share * Z).sum(dim=0)
    Z.sub_(mean)
    peak = Z.abs().amax(dim=0) if Z.numel() else Z.new_zeros(Z.shape[1:])
    large = Z.numel() and float(peak.max()) > math.sqrt(torch.finfo(Z.dtype).max / len(Z))
    unit = power_of_two_scales(peak) if large else None
    U = Z if unit is None else Z * unit
    std = (U.square().mean(dim=0) if share is None else (share * U.square()).sum(dim=0)).sqrt()
    return mean, std if unit is None else std / unit


@dataclass(frozen=True)
class FeatureStats:
    """Mean and standard deviation (population, ddof 0, as scikit-learn's StandardScaler) of each feature of a table,
    float64, over `count` rows. `scale` is the std with 0 taken as 1 (a constant column is centred, not divided), and
    `standardize(X)` = (X − mean) / scale. Computed in memory (`of`) or over a stream
    (`linear_nets.data.table_stream.stream_feature_stats`).

    Example:
        >>> stats = FeatureStats.of(torch.tensor([[1.0, 5.0], [3.0, 5.0]]))
        >>> stats.mean.tolist(), stats.std.tolist(), stats.standardize(torch.tensor([[2.0, 5.0]])).tolist()
        ([2.0, 5.0], [1.0, 0.0], [[0.0, 0.0]])
    """

    mean: Tensor
    std: Tensor
    count: int

    @classmethod
    def of(cls, X: Tensor, weights: Tensor | None = None) -> FeatureStats:
        """Statistics of in-memory rows X `[n, d]` (e.g. the training split); with `weights` w `[n]`, weighted means
        (row i counted w_i times)."""
        return cls(*_mean_std(X.to(torch.float64, copy=True), weights), X.shape[0])

    @property
    def scale(self) -> Tensor:
        return torch.where(self.std > 0, self.std, torch.ones_like(self.std))

    def standardize(self, X: Tensor) -> Tensor:
        return ((X.to(torch.float64) - self.mean) / self.scale).to(X.dtype)
