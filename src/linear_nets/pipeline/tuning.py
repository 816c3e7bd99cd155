"""A small seeded search for the best softmax regression, judged on a validation split only: `tune_softmax`.
`SOFTMAX_PRESETS["best"]` (linear_nets.pipeline.config) is what this search chose."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from linear_nets.pipeline.config import SOFTMAX_PRESETS, TUNING_GRID, SoftmaxConfig, grid_configs
from linear_nets.pipeline.fit import Dataset, fit_softmax


@dataclass
class Trial:
    """One configuration of the search and how it did on the validation split."""

    config: SoftmaxConfig
    val_accuracy: float
    best_epoch: int
    seconds: float


def tune_softmax(
    data: Dataset,
    base: SoftmaxConfig = SOFTMAX_PRESETS["best"],
    grid: dict[str, Sequence] | None = None,
    on_trial: Callable[[Trial], None] | None = None,
) -> list[Trial]:
    """Fit every combination of `grid`'s values (config field -> values) around `base`; return the trials, best
    validation accuracy first (ties to the faster fit). The test set is never scored. A `base` without a validation
    split or a bad grid is a `ConfigError` before any training.

    Example:
        >>> import torch
        >>> X = torch.randn(300, 2); y = (X[:, 0] > 0).long()
        >>> base = SoftmaxConfig(impl="manual", epochs=3, batch_size=30, val_fraction=0.2)
        >>> [t.config.lr for t in tune_softmax(Dataset((X, y)), base, {"lr": [1e-4, 0.5]})]
        [0.5, 0.0001]
    """
    trials = []
    for config in grid_configs(base, TUNING_GRID if grid is None else grid):
        result = fit_softmax(config, data, evaluate_test=False)
        trials.append(Trial(config, result.val_accuracy, result.best_epoch, result.seconds))
        if on_trial is not None:
            on_trial(trials[-1])
    return sorted(trials, key=lambda t: (-t.val_accuracy, t.seconds))
