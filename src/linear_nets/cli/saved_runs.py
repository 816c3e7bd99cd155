"""`linear-nets evaluate RUN_DIR` and `linear-nets predict RUN_DIR`: use a trained model from its run directory.

The model is rebuilt from the run's config.json and loaded from model.safetensors (verified against model.json;
nothing in a run directory can execute code). Softmax runs are evaluated on the Fashion-MNIST test set, with a
confusion matrix; linear-regression runs on their synthetic data, regenerated from the recorded seed.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

from linear_nets.cli.common import add_device_argument, positive_int
from linear_nets.errors import DataError


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `evaluate` and `predict`."""
    evaluate = subparsers.add_parser("evaluate", help="reload a run's model and report its test metrics")
    evaluate.add_argument("run_dir", metavar="RUN_DIR", help="a directory written by `linear-nets train`")
    evaluate.add_argument("--data-dir", default=None, metavar="DIR", help="Fashion-MNIST directory (softmax runs)")
    evaluate.add_argument("--data", default=None, metavar="FILE",
                          help="a labelled table to score (columns matched to the training table by name)")  # fmt: skip
    add_device_argument(evaluate)
    evaluate.set_defaults(func=run_evaluate)

    predict = subparsers.add_parser("predict", help="predict with a run's model (images, or the rows of a table)")
    predict.add_argument("run_dir", metavar="RUN_DIR", help="a directory written by `linear-nets train softmax`")
    predict.add_argument(
        "images", nargs="*", metavar="IMAGE", help="PNG files to classify (grey or colour, 28x28 or larger)"
    )
    predict.add_argument("--n", type=positive_int, default=12, help="test images to show (default: 12)")
    predict.add_argument("--out", default=None, metavar="FILE",
                         help="figure of the test predictions (.png/.svg); with --data, the predictions "
                              "(.csv or .parquet; default: predictions.csv in the run directory)")  # fmt: skip
    predict.add_argument("--data", default=None, metavar="FILE",
                         help="a table to predict a value (linreg) or a class with its probabilities (softmax) for "
                              "each row of; columns are matched to the training schema by name")  # fmt: skip
    predict.add_argument("--data-dir", default=None, metavar="DIR", help="Fashion-MNIST directory")
    predict.set_defaults(func=run_predict)


def load_softmax(run: Any, device: str | None = None) -> tuple[Any, Any, list[str]]:
    """The trained model of a softmax run (any implementation, standardised or not), its config and class names.

    Nothing here asks which class the model is: it is rebuilt from the config and used through its interface
    (`logits`, `predict_proba`, `predict`).
    """
    import dataclasses

    from linear_nets.data.fashion_mnist import CLASSES
    from linear_nets.pipeline.config import SoftmaxConfig
    from linear_nets.pipeline.fit import build_model, resolve_device
    from linear_nets.pipeline.runs import check_state, saved_config

    config = saved_config(run, SoftmaxConfig)
    if device is not None:
        config = dataclasses.replace(config, device=device)
    tensors, meta = run.load_model()
    classes = meta.get("classes")
    classes = list(classes) if isinstance(classes, list) else list(CLASSES)
    model = build_model(config, int(meta.get("num_inputs", 0)) or tensors["W"].shape[0], len(classes))
    check_state(tensors, model.state_tensors(), run.path / "model.safetensors")
    model.load_state_tensors(tensors)
    model.to(resolve_device(config.device))
    return model, config, classes


def confusion_matrix(y: Any, y_pred: Any, num_classes: int) -> Any:
    """C[i, j] = number of examples of true class i predicted as class j.

    Example:
        >>> import torch
        >>> confusion_matrix(torch.tensor([0, 1, 1]), torch.tensor([0, 0, 1]), 2)
        tensor([[1, 0],
                [1, 1]])
    """
    import torch

    return torch.bincount(y * num_classes + y_pred, minlength=num_classes**2).reshape(num_classes, num_classes)


def run_evaluate(args: argparse.Namespace) -> int:
    """The `evaluate` handler."""
    import torch

    from linear_nets.data.fashion_mnist import load_data_fashion_mnist
    from linear_nets.pipeline.runs import Run, write_json
    from linear_nets.softmax import stable_cross_entropy

    run = Run.open(args.run_dir)
    if args.data is not None:
        return _evaluate_table(run, args.data)
    if run.model == "linreg":
        return _evaluate_linreg(run)
    model, config, classes = load_softmax(run, args.device)
    data_dir = args.data_dir or run.config.get("options", {}).get("data_dir") or run.config.get("args", {}).get(
        "data_dir"
    )
    _, test_iter = load_data_fashion_mnist(4096, config.resize, data_dir)
    device = next(iter(model.parameters())).device
    test_iter.to(device)
    loss_sum, predictions, labels = 0.0, [], []
    with torch.no_grad():
        for X, y in test_iter:
            logits = model.logits(X)
            loss_sum += stable_cross_entropy(logits, y).sum().item()
            predictions.append(logits.argmax(dim=1))
            labels.append(y)
    y, y_pred = torch.cat(labels).cpu(), torch.cat(predictions).cpu()
    matrix = confusion_matrix(y, y_pred, len(classes))
    result = {"test_loss": loss_sum / len(y), "test_accuracy": (y == y_pred).double().mean().item(), "n": len(y)}
    print(f"{run.path}: softmax ({config.impl}), {len(y)} test images")
    print(f"test loss     {result['test_loss']:.4f}")
    print(f"test accuracy {result['test_accuracy']:.4f}")
    print(_format_confusion(matrix, classes))
    write_json(run.path / "evaluation.json", {**result, "confusion": matrix.tolist(), "classes": classes})
    _save_confusion_figure(matrix, classes, run.path / "confusion.png")
    print(f"wrote {run.path / 'evaluation.json'} and {run.path / 'confusion.png'}")
    return 0


def _evaluate_linreg(run: Any) -> int:
    import torch

    from linear_nets.cli.train_linreg import make_data
    from linear_nets.losses import squared_loss
    from linear_nets.pipeline.config import LinregConfig
    from linear_nets.pipeline.runs import saved_config

    config = saved_config(run, LinregConfig)
    synthetic = run.config.get("data", {}).get("synthetic") or run.config.get("args")
    tensors, _ = run.load_model()
    true_w, X, y = make_data(synthetic, config.seed)
    if tensors["w"].shape != true_w.shape:
        raise DataError(f"{run.path}: model has {tensors['w'].numel()} weights but the run's data has {len(true_w)}")
    w, b = tensors["w"].to(torch.float64), tensors["b"].to(torch.float64)
    loss = squared_loss(X.double() @ w + b, y.double()).mean()
    print(f"{run.path}: linear regression on its {len(y)} synthetic examples (seed {config.seed})")
    print(f"mean squared loss (y_hat - y)^2 / 2: {loss.item():.6g}")
    print(f"error in estimating w: {(true_w.double() - w).tolist()}")
    print(f"error in estimating b: {synthetic['true_b'] - b.item():.6g}")
    return 0


def _format_confusion(matrix: Any, classes: list[str]) -> str:
    width = max(len(c) for c in classes)
    header = " " * (width + 2) + " ".join(f"{c[:5]:>5}" for c in classes)
    rows = [
        f"{c:>{width}}  " + " ".join(f"{v:>5}" for v in row) for c, row in zip(classes, matrix.tolist(), strict=True)
    ]
    return "\n".join(["confusion matrix (rows: true class, columns: predicted)", header, *rows])


def _save_confusion_figure(matrix: Any, classes: list[str], path: Path) -> None:
    import numpy as np

    from linear_nets.plotting import pyplot, save_figure

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 5.5), layout="constrained")
    ax.imshow(matrix.numpy(), cmap="Blues")
    ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
    ax.set_yticks(range(len(classes)), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    threshold = matrix.max().item() / 2
    for (i, j), v in np.ndenumerate(matrix.numpy()):
        ax.text(j, i, str(v), ha="center", va="center", fontsize=7, color="white" if v > threshold else "black")
    save_figure(fig, path)
    plt.close(fig)


def read_image(path: str | Path, side: int) -> Any:
    """An image file as a `[1, side, side]` float tensor in [0, 1]: grey (mean of RGB), resized with antialiasing.

    Fashion-MNIST shows light garments on a black background; photos on white should be inverted first.
    """
    import numpy as np
    import torch
    from matplotlib import image as mpimg

    try:
        raw = mpimg.imread(path)
    except FileNotFoundError:
        raise DataError(f"image {path} does not exist") from None
    except Exception as exc:  # PIL/matplotlib raise many types for unreadable files
        raise DataError(f"image {path} cannot be read as an image: {exc}") from None
    # PNGs come back as floats in [0, 1], other formats (JPEG) as uint8 in [0, 255]: decide by type, not by value
    pixels = raw.astype(np.float32) / 255.0 if raw.dtype == np.uint8 else np.asarray(raw, dtype=np.float32)
    if pixels.ndim == 3:
        pixels = pixels[..., :3].mean(axis=2)
    if pixels.ndim != 2 or min(pixels.shape) < 1:
        raise DataError(f"image {path} has shape {pixels.shape}; expected a 2-D grey or colour image")
    x = torch.from_numpy(np.ascontiguousarray(pixels))[None, None]
    if x.shape[-2:] != (side, side):
        x = torch.nn.functional.interpolate(x, size=(side, side), mode="bilinear", antialias=True)
    return x[0].clamp_(0.0, 1.0)


def run_predict(args: argparse.Namespace) -> int:
    """The `predict` handler."""
    import torch

    from linear_nets.data.fashion_mnist import load_data_fashion_mnist
    from linear_nets.pipeline.runs import Run
    from linear_nets.plotting import figure_paths, save_figure, show_predictions

    if args.data is not None:
        return _predict_table(Run.open(args.run_dir), args.data, args.out)
    run = Run.open(args.run_dir, model="softmax")
    model, config, classes = load_softmax(run)
    side = config.resize or 28
    if args.images:
        images = torch.stack([read_image(path, side) for path in args.images])
        probs = model.predict_proba(images)
        for path, p in zip(args.images, probs, strict=True):
            k = int(p.argmax())
            print(f"{path}: {classes[k]} ({p[k].item():.1%})")
        return 0
    out = Path(args.out) if args.out else run.path / "predict.png"
    figure_paths(out)  # checked before any work: a bad --out fails at once
    data_dir = args.data_dir or run.config.get("options", {}).get("data_dir")
    _, test_iter = load_data_fashion_mnist(args.n, config.resize, data_dir)
    X, y = next(iter(test_iter))
    probs = model.predict_proba(X)
    y_pred = probs.argmax(dim=1)
    true_text, pred_text = [classes[i] for i in y], [classes[i] for i in y_pred]
    for i, (t, p) in enumerate(zip(true_text, pred_text, strict=True)):
        mark = "" if t == p else "   <- wrong"
        print(f"test image {i:>3}: true {t:<11} predicted {p:<11} ({probs[i, y_pred[i]].item():.1%}){mark}")
    rows = max(1, math.ceil(len(y) / 9))
    written = save_figure(show_predictions(X, true_text, pred_text, num_rows=rows), out)
    print("wrote " + ", ".join(str(p) for p in written))
    return 0


def _table_spec(run: Any) -> Any:
    from linear_nets.data.table_spec import TableSpec

    spec = run.config.get("data", {}).get("spec")
    if spec is None:
        raise DataError(f"{run.path} was not trained on a table (--data): it has no training schema to match")
    return TableSpec.from_dict(spec)


def _table_model(run: Any, spec: Any) -> Any:
    """A function X -> (predictions, probabilities or None) for a table run."""
    import torch

    if run.model == "linreg":
        tensors, _ = run.load_model()
        w, b = tensors["w"].to(torch.float64), tensors["b"].to(torch.float64)
        return lambda X: (X.to(torch.float64) @ w + b, None)
    model, _, _ = load_softmax(run)
    return lambda X: (model.predict(X), model.predict_proba(X))


def _predict_table(run: Any, path: str, out: str | None) -> int:
    """One prediction per row (and a probability per class for softmax), written as CSV or Parquet."""
    import os

    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    from linear_nets.data.tables import load_features

    spec = _table_spec(run)
    target = Path(out) if out else run.path / "predictions.csv"
    if target.suffix not in (".csv", ".parquet"):
        raise DataError(f"--out {target}: write predictions to a .csv or .parquet file")
    X = load_features(path, spec)
    predicted, proba = _table_model(run, spec)(X)
    if proba is None:
        columns = {f"predicted_{spec.target}": predicted.tolist()}
    else:
        columns = {f"predicted_{spec.target}": [spec.classes[i] for i in predicted.tolist()]}
        columns |= {f"probability_{name}": proba[:, k].tolist() for k, name in enumerate(spec.classes)}
    table = pa.table(columns)
    temporary = target.with_name(f".{target.name}.tmp")
    try:
        pq.write_table(table, temporary) if target.suffix == ".parquet" else pacsv.write_csv(table, temporary)
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)
    print(f"predicted {len(X)} rows of {path}; wrote {target}")
    return 0


def _evaluate_table(run: Any, path: str) -> int:
    """Score a labelled table: MSE and R² (linreg), or accuracy and a confusion matrix (softmax)."""
    from linear_nets.data.tables import load_table
    from linear_nets.pipeline.runs import write_json
    from linear_nets.pipeline.tables import regression_scores

    spec = _table_spec(run)
    loaded = load_table(path, spec.target, spec=spec)
    predicted, _ = _table_model(run, spec)(loaded.X)
    if run.model == "linreg":
        tensors, _ = run.load_model()
        scores = regression_scores([(loaded.X, loaded.y)], tensors["w"], tensors["b"])
        result = {"mse": scores.mse, "r2": scores.r2, "n": scores.rows}
        print(f"{run.path} on {path}: {scores.rows} rows, MSE {scores.mse:.6g}, R² {scores.r2:.4f}")
    else:
        classes = list(spec.classes)
        matrix = confusion_matrix(loaded.y, predicted, len(classes))
        accuracy = (predicted == loaded.y).double().mean().item()
        result = {"accuracy": accuracy, "n": len(loaded.y), "confusion": matrix.tolist(), "classes": classes}
        print(f"{run.path} on {path}: {len(loaded.y)} rows, accuracy {accuracy:.4f}")
        print(_format_confusion(matrix, classes))
        _save_confusion_figure(matrix, classes, run.path / "confusion.png")
    write_json(run.path / "evaluation.json", {"data": str(path), **result})
    print(f"wrote {run.path / 'evaluation.json'}")
    return 0
