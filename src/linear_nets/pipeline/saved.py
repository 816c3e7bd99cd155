"""A trained model from its run directory, and what `evaluate` and `predict` compute with it.

The model is rebuilt from the run's config and loaded from model.safetensors (verified against model.json; nothing
in a run directory can execute code), then used only through its interface (`logits`, `predict_proba`, `predict`):
nothing here asks which implementation trained it.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from linear_nets.errors import ConfigError, DataError
from linear_nets.models import SoftmaxModel
from linear_nets.pipeline.config import LinregConfig, SoftmaxConfig, SyntheticData, field_names, from_dict
from linear_nets.pipeline.fit import build_model, resolve_device
from linear_nets.pipeline.runs import Run, check_state, saved_config
from linear_nets.softmax import stable_cross_entropy


def load_softmax(run: Run, device: str | None = None) -> tuple[SoftmaxModel, SoftmaxConfig, list[str]]:
    """The trained model of a softmax run (any implementation, standardised or not), its config and class names.

    model.json's `num_inputs` and `classes` must be those of the data the config describes (`(resize or 28)²` pixels
    and Fashion-MNIST's classes, or the training table's features and classes), and its tensors those of that model.
    """
    from linear_nets.data.fashion_mnist import CLASSES

    config = saved_config(run, SoftmaxConfig)
    if device is not None:
        config = dataclasses.replace(config, device=device)
    tensors, meta = run.load_model()
    spec = table_spec(run) if run.config.get("data", {}).get("spec") is not None else None
    inputs, known = (spec.num_features, list(spec.classes)) if spec else ((config.resize or 28) ** 2, list(CLASSES))
    num_inputs = meta.get("num_inputs", inputs)  # runs of 0.1 did not record it
    if type(num_inputs) is not int or num_inputs != inputs:
        raise DataError(f"{run.path / 'model.json'}: meta.num_inputs must be {inputs} (the inputs of the run's data), "
                        f"got {num_inputs!r}")  # fmt: skip
    classes = meta.get("classes", known)
    classes = known if type(classes) is int else classes  # runs of 0.1 saved a count
    if classes != known:
        raise DataError(f"{run.path / 'model.json'}: meta.classes must be the run's {len(known)} classes {known}, "
                        f"got {classes!r}")  # fmt: skip
    W = tensors.get("W")
    if W is None or tuple(W.shape) != (inputs, len(known)):  # before building: a tampered size allocates nothing
        raise DataError(f"{run.path / 'model.safetensors'}: W must have shape [{inputs}, {len(known)}] (inputs x "
                        f"classes), got {None if W is None else list(W.shape)}")  # fmt: skip
    model = build_model(config, num_inputs, len(classes))
    check_state(tensors, model.state_tensors(), run.path / "model.safetensors")
    model.load_state_tensors(tensors)
    model.to(resolve_device(config.device))
    return model, config, classes


def load_linreg(run: Run, num_features: int) -> tuple[Tensor, Tensor]:
    """A linear-regression run's weights `w` `[num_features]` and bias `b` `[]` (float64, finite), checked."""
    tensors, _ = run.load_model()
    expected = {"w": torch.zeros(num_features, dtype=torch.float64), "b": torch.zeros((), dtype=torch.float64)}
    check_state(tensors, expected, run.path / "model.safetensors")
    return tensors["w"], tensors["b"]


def confusion_matrix(y: Tensor, y_pred: Tensor, num_classes: int) -> Tensor:
    """C[i, j] = number of examples of true class i predicted as class j.

    Example:
        >>> confusion_matrix(torch.tensor([0, 1, 1]), torch.tensor([0, 0, 1]), 2)
        tensor([[1, 0],
                [1, 1]])
    """
    return torch.bincount(y * num_classes + y_pred, minlength=num_classes**2).reshape(num_classes, num_classes)


@dataclasses.dataclass
class Scores:
    """A classifier's scores on labelled data: mean cross-entropy, accuracy, confusion matrix; and each example's
    class probabilities `[n, K]` (float64) and true class `[n]`, for the scores per class and the calibration."""

    loss: float
    accuracy: float
    confusion: Tensor
    n: int
    probabilities: Tensor | None = None
    labels: Tensor | None = None


def score_classifier(model: SoftmaxModel, batches: Any, num_classes: int) -> Scores:
    """Mean cross-entropy (stable, from the logits), accuracy and confusion matrix over (X, y) batches."""
    loss_sum, predictions, labels, probabilities = 0.0, [], [], []
    with torch.no_grad():
        for X, y in batches:
            logits = model.logits(X)
            loss_sum += stable_cross_entropy(logits, y).sum().item()
            predictions.append(logits.argmax(dim=1))
            probabilities.append(torch.softmax(logits.double(), dim=1).cpu())
            labels.append(y)
    y, y_pred = torch.cat(labels).cpu(), torch.cat(predictions).cpu()
    accuracy = (y == y_pred).double().mean().item()
    return Scores(loss_sum / len(y), accuracy, confusion_matrix(y, y_pred, num_classes), len(y),
                  torch.cat(probabilities), y)  # fmt: skip


def synthetic_problem(data: SyntheticData, seed: int) -> tuple[Tensor, Tensor, Tensor]:
    """A linreg run's synthetic data (true w, X, y), regenerated exactly from its data options and seed."""
    from linear_nets.data.synthetic import synthetic_data

    true_w = torch.tensor(data.true_w, dtype=torch.float32)
    generator = torch.Generator().manual_seed(seed)
    X, y = synthetic_data(true_w, data.true_b, data.samples, data.noise, generator=generator)
    return true_w, X, y


def synthetic_options(run: Run) -> SyntheticData:
    """The options a synthetic-data linreg run generated its data with (regenerate it with `synthetic_problem`)."""
    options = run.config.get("data", {}).get("synthetic") or run.config.get("args")  # 0.1 kept them with the args
    if not isinstance(options, dict) or not options:
        raise DataError(f"{run.path / 'config.json'}: data.synthetic is missing: the run's data cannot be regenerated")
    try:
        return from_dict(SyntheticData, {k: v for k, v in options.items() if k in field_names(SyntheticData)})
    except ConfigError as exc:
        raise DataError(f"{run.path / 'config.json'}: data.synthetic: {exc}") from None


def linreg_on_its_data(run: Run) -> dict[str, Any]:
    """A synthetic-data linreg run's mean squared loss on its regenerated data and its estimation errors."""
    from linear_nets.losses import squared_loss

    config = saved_config(run, LinregConfig)
    synthetic = synthetic_options(run)
    w, b = load_linreg(run, len(synthetic.true_w))
    true_w, X, y = synthetic_problem(synthetic, config.seed)
    return {
        "n": len(y),
        "seed": config.seed,
        "loss": squared_loss(X.double() @ w + b, y.double()).mean().item(),
        "error_w": (true_w.double() - w).tolist(),
        "error_b": synthetic.true_b - b.item(),
    }


# --- runs trained on a table -----------------------------------------------------------------------------------------


def table_spec(run: Run) -> Any:
    """The training schema a table run recorded (to match a new table's columns by name)."""
    from linear_nets.data.table_spec import TableSpec

    spec = run.config.get("data", {}).get("spec")
    if spec is None:
        raise DataError(f"{run.path} was not trained on a table (--data): it has no training schema to match")
    return TableSpec.from_dict(spec)  # checked when the run was opened (`runs.check_run_config`)


def table_predictions(run: Run, path: str | os.PathLike) -> Any:
    """A pyarrow table of one prediction per row of `path` (and, for softmax, a probability per class)."""
    import pyarrow as pa

    from linear_nets.data.tables import load_features

    spec = table_spec(run)
    X = load_features(path, spec)
    if run.model == "linreg":
        w, b = load_linreg(run, spec.num_features)
        predicted = X.to(torch.float64) @ w + b
        return pa.table({f"predicted_{spec.target}": predicted.tolist()})
    model, _, _ = load_softmax(run)
    proba = model.predict_proba(X)
    columns = {f"predicted_{spec.target}": [spec.classes[i] for i in proba.argmax(dim=1).tolist()]}
    columns |= {f"probability_{name}": proba[:, k].tolist() for k, name in enumerate(spec.classes)}
    return pa.table(columns)


def check_table_path(target: Path) -> Path:
    """Return `target`, or raise `DataError` unless it names a .csv or .parquet file (checked before any work)."""
    if target.suffix not in (".csv", ".parquet"):
        raise DataError(f"--out {target}: write predictions to a .csv or .parquet file")
    return target


def write_table(table: Any, target: Path) -> None:
    """Write a pyarrow table as CSV or Parquet (by the name's suffix, see `check_table_path`), atomically."""
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    from linear_nets.atomic import atomic_open

    check_table_path(target)
    with atomic_open(target, "wb") as f:  # the one write helper: a full disk or read-only place is one line
        pq.write_table(table, f) if target.suffix == ".parquet" else pacsv.write_csv(table, f)


def score_table(run: Run, path: str | os.PathLike) -> dict[str, Any]:
    """A table run's scores on a labelled table: MSE and R² (linreg), or accuracy and confusion (softmax)."""
    from linear_nets.data.tables import load_table
    from linear_nets.pipeline.tables import regression_scores

    spec = table_spec(run)
    loaded = load_table(path, spec.target, spec=spec)
    if run.model == "linreg":
        scores = regression_scores([(loaded.X, loaded.y)], *load_linreg(run, spec.num_features))
        return {"mse": scores.mse, "r2": scores.r2, "n": scores.rows}
    model, _, _ = load_softmax(run)
    scores = score_classifier(model, [(loaded.X, loaded.y)], len(spec.classes))
    return {"accuracy": scores.accuracy, "loss": scores.loss, "n": scores.n, "confusion": scores.confusion.tolist(),
            "classes": list(spec.classes)}  # fmt: skip
