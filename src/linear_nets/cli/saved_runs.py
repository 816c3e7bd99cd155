"""`linear-nets evaluate RUN_DIR` and `predict RUN_DIR`: flags and printing; the work is `pipeline.saved`'s."""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Any

from linear_nets.choices import DEVICES
from linear_nets.cli.common import (
    MAX_SHOW,
    check_show_count,
    check_table_flags_need_data,
    confidence_level,
    name_list,
    positive_int,
)
from linear_nets.errors import ConfigError, LinearNetsError


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `evaluate` and `predict`."""
    evaluate = subparsers.add_parser("evaluate", help="reload a run's model and report its test metrics")
    evaluate.add_argument("run_dir", metavar="RUN_DIR", help="a directory written by `linear-nets train`")
    evaluate.add_argument("--data-dir", default=None, metavar="DIR", help="Fashion-MNIST directory (softmax runs)")
    evaluate.add_argument("--data", default=None, metavar="FILE",
                          help="a labelled table to score (columns matched to the training table by name)")  # fmt: skip
    evaluate.add_argument("--device", choices=DEVICES, default=None,
                          help="where to compute: cpu (default), cuda, or auto (cuda if any)")  # fmt: skip
    evaluate.set_defaults(func=run_evaluate)

    predict = subparsers.add_parser("predict", help="predict with a run's model (images, or the rows of a table)")
    predict.add_argument("run_dir", metavar="RUN_DIR", help="a directory written by `linear-nets train softmax`")
    predict.add_argument(
        "images", nargs="*", metavar="IMAGE",
        help="PNG or JPEG files to classify (grey or colour, 28x28 or larger, at most 4096x4096); an unreadable one "
             "is reported on stderr and the others are still predicted (exit status 2 then)",
    )  # fmt: skip
    predict.add_argument("--n", type=positive_int, default=12,
                         help=f"test images to show (default: 12, at most {MAX_SHOW})")  # fmt: skip
    predict.add_argument("--out", default=None, metavar="FILE",
                         help="figure of the test predictions (.png/.svg); with --data, the predictions "
                              "(.csv or .parquet; default: predictions.csv in the run directory)")  # fmt: skip
    predict.add_argument("--data", default=None, metavar="FILE",
                         help="a table to predict a value (linreg) or a class with its probabilities (softmax) for "
                              "each row of; columns are matched to the training schema by name")  # fmt: skip
    keep = predict.add_mutually_exclusive_group()
    keep.add_argument("--keep", type=name_list, default=None, metavar="COL,COL,...",
                      help="with --data: copy these input columns (an id) into the predictions, before them")
    keep.add_argument("--keep-all", action="store_true", help="with --data: copy every input column")
    predict.add_argument("--overwrite", action="store_true",
                         help="with --data: replace an existing --out file (never the --data table itself)")
    predict.add_argument("--interval", type=confidence_level, default=None, metavar="LEVEL",
                         help="with --data on a least-squares run: add the mean's and a new observation's "
                              "intervals at this confidence, e.g. 0.95 (mean_ci_lower, mean_ci_upper, "
                              "obs_ci_lower, obs_ci_upper)")  # fmt: skip
    predict.add_argument("--data-dir", default=None, metavar="DIR", help="Fashion-MNIST directory")
    predict.set_defaults(func=run_predict)


def run_evaluate(args: argparse.Namespace) -> int:
    """The `evaluate` handler."""
    from linear_nets.data.fashion_mnist import load_data_fashion_mnist
    from linear_nets.pipeline.evaluation import evaluate_classifier, evaluation_figures, format_per_class
    from linear_nets.pipeline.runs import Run
    from linear_nets.pipeline.saved import linreg_on_its_data, load_softmax

    run = Run.open(args.run_dir)
    if args.data is not None or run.spec is not None:
        return _evaluate_table(run, args.data)
    if run.model == "linreg":
        result = linreg_on_its_data(run)
        print(f"{run.path}: linear regression on its {result['n']} synthetic examples (seed {result['seed']})")
        print(f"mean squared loss (y_hat - y)^2 / 2: {result['loss']:.6g}")
        print(f"error in estimating w: {result['error_w']}")
        print(f"error in estimating b: {result['error_b']:.6g}")
        return 0
    model, config, classes = load_softmax(run, args.device)
    options = run.config.get("options", {}) or run.config.get("args", {})
    _, test_iter = load_data_fashion_mnist(4096, config.resize, args.data_dir or options.get("data_dir"))
    test_iter.to(next(iter(model.parameters())).device)
    evaluation = evaluate_classifier(model, test_iter, classes)
    scores = evaluation.scores
    print(f"{run.path}: softmax ({config.impl}), {scores.n} test images")
    print(f"test loss     {scores.loss:.4f}")
    print(f"test accuracy {scores.accuracy:.4f}")
    print(_format_confusion(scores.confusion, classes))
    print(format_per_class(evaluation))
    result = {"test_loss": scores.loss, "test_accuracy": scores.accuracy, "n": scores.n,
              "confusion": scores.confusion.tolist(), "classes": classes, **evaluation.record()}
    _save_evaluation(run.path, result, (scores.confusion, classes), lambda: evaluation_figures(
        evaluation, model, images=test_iter.tensors[0].cpu(), image_side=config.resize or 28))
    return 0


def _evaluate_table(run: Any, path: str | None) -> int:
    """Score a table run on `--data FILE`, or on its own held-out test rows without it."""
    from linear_nets.pipeline.saved import score_table

    result = score_table(run, path)
    where = result.pop("where")
    figure = None
    if run.model == "linreg":
        r2 = "n/a (constant target)" if result["r2"] != result["r2"] else f"{result['r2']:.4f}"
        print(f"{run.path} on {where}: {result['n']} rows, MSE {result['mse']:.6g}, R² {r2}")
    else:
        print(f"{run.path} on {where}: {result['n']} rows, accuracy {result['accuracy']:.4f}")
        import torch

        figure = (torch.tensor(result["confusion"]), result["classes"])
        print(_format_confusion(*figure))
    _save_evaluation(run.path, {"data": str(path) if path else None, "rows": where, **result}, figure)
    return 0


def _save_evaluation(run_path: Path, result: dict, confusion: tuple[Any, list[str]] | None,
                     figures: Any = None) -> None:  # fmt: skip
    """Write confusion.png, the `figures()` and evaluation.json; a directory that cannot take them is a warning."""
    from linear_nets.errors import WriteError
    from linear_nets.pipeline.runs import write_json
    from linear_nets.plotting import figure_paths, pyplot, save_figure

    try:
        figure_paths(run_path / "confusion.png")  # a directory that cannot take them costs no drawing
        drawn = {"confusion": _confusion_figure(*confusion)} if confusion else {}
        written = []
        for name, fig in (drawn | (figures() if figures else {})).items():
            written += save_figure(fig, run_path / f"{name}.png")
            pyplot().close(fig)
        write_json(run_path / "evaluation.json", result)  # last: it never describes another evaluation's figure
        written.append(run_path / "evaluation.json")
    except (WriteError, ConfigError) as exc:  # ConfigError: save_figure's check of a directory it cannot write
        print(f"linear-nets: warning: the evaluation files were not saved ({exc})", file=sys.stderr)
        return
    print("wrote " + ", ".join(str(p) for p in written))


def _format_confusion(matrix: Any, classes: list[str]) -> str:
    """The confusion matrix as text, every class name whole (longer than 12 characters: numbered in the header)."""
    numbered = max(len(c) for c in classes) > 12
    heads = [str(k) for k in range(len(classes))] if numbered else classes
    names = [f"{k} {c}" for k, c in enumerate(classes)] if numbered else classes
    width = max(len(c) for c in names)
    counts = max(5, *(len(str(v)) for v in matrix.reshape(-1).tolist()))
    cells = [max(counts, len(h)) for h in heads]  # each column as wide as its name
    title = "confusion matrix (rows: true class, columns: predicted" + (", numbered as the rows)" if numbered else ")")
    header = " " * (width + 2) + " ".join(f"{h:>{cell}}" for h, cell in zip(heads, cells, strict=True))
    rows = [f"{c:>{width}}  " + " ".join(f"{v:>{cell}}" for v, cell in zip(row, cells, strict=True))
            for c, row in zip(names, matrix.tolist(), strict=True)]  # fmt: skip
    return "\n".join([title, header, *rows])


def _confusion_figure(matrix: Any, classes: list[str]) -> Any:
    import numpy as np

    from linear_nets.plotting import pyplot

    fig, ax = pyplot().subplots(figsize=(6.5, 5.5), layout="constrained")
    ax.imshow(matrix.numpy(), cmap="Blues")
    ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
    ax.set_yticks(range(len(classes)), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    threshold = matrix.max().item() / 2
    for (i, j), v in np.ndenumerate(matrix.numpy()):
        ax.text(j, i, str(v), ha="center", va="center", fontsize=7, color="white" if v > threshold else "black")
    return fig


def _predict_images(model: Any, classes: list[str], paths: list[str], side: int) -> int:
    """Print each image's class; one that cannot be read is a line on stderr (exit status 2), the others predicted."""
    import torch

    from linear_nets.pipeline.saved import read_image

    images, readable = [], []
    for path in paths:
        try:
            images.append(read_image(path, side))
            readable.append(path)
        except LinearNetsError as exc:
            print(f"linear-nets: error: {exc}", file=sys.stderr)
    if images:
        probs = model.predict_proba(torch.stack(images))
        for path, p in zip(readable, probs, strict=True):
            k = int(p.argmax())
            print(f"{path}: {classes[k]} ({p[k].item():.1%})")
    return 0 if len(readable) == len(paths) else 2


def run_predict(args: argparse.Namespace) -> int:
    """The `predict` handler."""
    from linear_nets.data.fashion_mnist import load_data_fashion_mnist
    from linear_nets.pipeline.runs import Run
    from linear_nets.pipeline.saved import image_classifier
    from linear_nets.plotting import figure_paths, save_figure, show_predictions

    check_table_flags_need_data(args)
    run = Run.open(args.run_dir)
    if args.data is not None:
        from linear_nets.pipeline.saved import check_table_path, table_predictions, write_table

        # an explicit --out is never replaced unless asked; the run's own predictions.csv is its latest
        target = check_table_path(Path(args.out) if args.out else run.path / "predictions.csv", args.data,
                                  overwrite=args.overwrite or args.out is None)  # fmt: skip
        table = table_predictions(run, args.data, ["*"] if args.keep_all else args.keep, args.interval)
        write_table(table, target)
        print(f"predicted {table.num_rows} rows of {args.data}; wrote {target}")
        return 0
    check_show_count(args.n)
    model, config, classes = image_classifier(run)
    if args.images:
        return _predict_images(model, classes, args.images, config.resize or 28)
    out = Path(args.out) if args.out else run.path / "predict.png"
    figure_paths(out)  # checked before any work: a bad --out fails at once
    options = run.config.get("options", {}) or run.config.get("args", {})
    _, test_iter = load_data_fashion_mnist(args.n, config.resize, args.data_dir or options.get("data_dir"))
    X, y = next(iter(test_iter))
    probs = model.predict_proba(X)
    y_pred = probs.argmax(dim=1)
    true_text, pred_text = [classes[i] for i in y], [classes[i] for i in y_pred]
    for i, (t, p) in enumerate(zip(true_text, pred_text, strict=True)):
        mark = "" if t == p else "   <- wrong"
        print(f"test image {i:>3}: true {t:<11} predicted {p:<11} ({probs[i, y_pred[i]].item():.1%}){mark}")
    figure = show_predictions(X, true_text, pred_text, num_rows=max(1, math.ceil(len(y) / 9)),
                              probabilities=probs.max(dim=1).values.tolist())
    print("wrote " + ", ".join(str(p) for p in save_figure(figure, out)))
    return 0
