"""The best linear classifier on Fashion-MNIST: our configurations against scikit-learn, in one process.

All models are one affine layer on the 784 pixels (ours optionally standardised), trained on Fashion-MNIST's
training set and scored once on its test set. Times are fit times from data in memory (ours include fitting the
standardisation and the per-epoch validation; neither side includes reading the files).
  - the book's recipe (d2l 3.7: concise, SGD lr 0.1, batch 256, 10 epochs) on all 60,000 training images;
  - scikit-learn LogisticRegression(solver="lbfgs", C=1, max_iter=100) on all 60,000 (pixels / 255);
  - scikit-learn SGDClassifier(loss="log_loss"), its defaults, on all 60,000 (pixels / 255);
  - ours: each named configuration below on 54,000 images, early-stopped / best-epoch-restored on a stratified
    6,000-image validation split (`val_fraction` 0.1, carved by `fit_softmax` with the run's seed; the preset `best`
    among them); median over seeds 0, 1, 2;
  - the sweep: lr x weight decay around the `best` preset (seed 0), with validation and, as evidence only, test
    accuracy;
  - the curves of exercise 3.7.2: train / validation / test accuracy per epoch over `--curve-epochs` epochs, for
    the book's recipe and for the best preset run without its schedule and early stopping (benchmarks/best_curves.png).
Prints markdown tables and replaces the "## Best linear classifier" section of benchmarks/RESULTS.md.

Run: .venv/bin/python benchmarks/bench_best.py [--seeds 3] [--curve-epochs 50] [--no-write] [--threads N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from bench_data import machine, replace_section  # benchmarks/ is on sys.path when run as a script

from linear_nets.atomic import atomic_write_text
from linear_nets.pipeline.config import SOFTMAX_PRESETS, SoftmaxConfig, as_flags
from linear_nets.pipeline.fit import Dataset, SoftmaxFit, as_one_batch, fashion_mnist, fit_softmax
from linear_nets.plotting import plot, save_figure
from linear_nets.training import Callback, evaluate_accuracy

RESULTS = Path(__file__).with_name("RESULTS.md")
FIGURE = Path(__file__).with_name("best_curves.png")
SECTION = "## Best linear classifier"
PRESETS = SOFTMAX_PRESETS
BEST = PRESETS["best"]  # carries its validation split (val_fraction 0.1) and early stopping (5 epochs)
VAL_FRACTION = 0.1  # what every one of our configurations below holds out, as BEST does

OURS: dict[str, SoftmaxConfig] = {
    "book + standardise (best of 10 epochs by validation)": replace(
        PRESETS["book"], standardize=True, val_fraction=VAL_FRACTION
    ),
    "preset best": BEST,
    "best, constant lr (no cosine schedule)": replace(BEST, schedule="constant"),
    "best on raw pixels (no standardisation, lr 0.1)": replace(BEST, standardize=False, lr=0.1),
    "best, Adam": replace(BEST, optimizer="adam", lr=1e-3),
    "best, manual (hand-derived gradient, plain SGD)": replace(
        BEST, impl="manual", optimizer="sgd", schedule="constant", lr=0.05
    ),
    "L-BFGS full batch, 100 iterations, standardised (fit_softmax only)": SoftmaxConfig(
        optimizer="lbfgs", lr=1.0, epochs=10, weight_decay=1e-4, standardize=True, val_fraction=VAL_FRACTION
    ),
    "L-BFGS full batch, 100 iterations, raw pixels (fit_softmax only)": SoftmaxConfig(
        optimizer="lbfgs", lr=1.0, epochs=10, weight_decay=1e-4, val_fraction=VAL_FRACTION
    ),
}
SWEEP = {"lr": [0.003, 0.01, 0.03, 0.1], "weight_decay": [0.0, 1e-4, 1e-3]}


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def fit(config: SoftmaxConfig, data: Dataset) -> SoftmaxFit:
    """`fit_softmax`, timed as this benchmark always has: the fit's seconds never include scoring the test set.

    With a validation split, `fit_softmax` scores the test set once, after its clock stops. Without one it would
    score the test set after every epoch, inside its seconds: there the test set is held back and scored once after.
    """
    if config.val_fraction is not None:
        return fit_softmax(config, data)
    result = fit_softmax(config, Dataset(data.train, None, data.classes))
    result.test_accuracy = evaluate_accuracy(result.model.logits, as_one_batch(*data.test, config.resize))
    return result


def sklearn_rows(data: Dataset) -> list[tuple[str, float, float]]:
    """(name, test accuracy, fit seconds) of scikit-learn's two solvers on all 60,000 training images."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression, SGDClassifier

    X = data.train[0].reshape(len(data.train[1]), -1).numpy().astype(np.float32) / 255
    y = data.train[1].numpy()
    Xt = data.test[0].reshape(len(data.test[1]), -1).numpy().astype(np.float32) / 255
    yt = data.test[1].numpy()
    rows = []
    models = {
        "scikit-learn LogisticRegression(lbfgs, C=1, max_iter=100)": LogisticRegression(C=1.0, max_iter=100),
        'scikit-learn SGDClassifier(loss="log_loss"), defaults': SGDClassifier(loss="log_loss", random_state=0),
    }
    for name, model in models.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # both stop at their iteration cap, as configured
            _, seconds = timed(lambda model=model: model.fit(X, y))
        rows.append((name, float(model.score(Xt, yt)), seconds))
        print(f"{name}: {rows[-1][1]:.4f} in {seconds:.2f} s", file=sys.stderr, flush=True)
    return rows


def ours_rows(data: Dataset, seeds: int) -> list[tuple[str, SoftmaxConfig, list[float], list[float]]]:
    """(name, config, test accuracies, seconds) per configuration, one fit per seed (which also draws the
    validation split of the configurations that hold one out)."""
    rows = [("book recipe (d2l 3.7), all 60,000", PRESETS["book"]), *OURS.items()]
    out = []
    for name, config in rows:
        accs, secs = [], []
        for seed in range(seeds):
            result = fit(replace(config, seed=seed), data)
            accs.append(result.test_accuracy)
            secs.append(result.seconds)
        out.append((name, config, accs, secs))
        print(f"{name}: {statistics.median(accs):.4f} in {statistics.median(secs):.2f} s", file=sys.stderr, flush=True)
    return out


def sweep_rows(data: Dataset) -> list[tuple[SoftmaxConfig, float, float, int, float]]:
    """(config, val acc, test acc, best epoch, seconds) over `SWEEP` around the best preset, seed 0."""
    out = []
    for lr in SWEEP["lr"]:
        for wd in SWEEP["weight_decay"]:
            config = replace(BEST, lr=lr, weight_decay=wd)
            r = fit(config, data)
            out.append((config, r.val_accuracy, r.test_accuracy, r.best_epoch, r.seconds))
    return out


class TestCurve(Callback):
    """Score the test set after every epoch into `accuracies`, for curves only (never used to choose anything), with
    the model `fit_softmax` builds, taken in `on_fit_begin`: under `standardize` that is the `Standardized` wrapper,
    whose `logits` take the raw test images. `seconds` is the time spent scoring, to leave out of the fit's time."""

    def __init__(self, test_iter) -> None:
        self.model, self.test_iter, self.accuracies, self.seconds = None, test_iter, [], 0.0

    def on_fit_begin(self, fit) -> None:
        self.model = fit.model

    def on_epoch_end(self, record) -> None:
        start = time.perf_counter()
        self.accuracies.append(evaluate_accuracy(self.model.logits, self.test_iter))
        self.seconds += time.perf_counter() - start


def curves(data: Dataset, epochs: int) -> tuple[list[str], Path]:
    """Train / validation / test accuracy per epoch for two long runs; the figure; a line describing each."""
    runs = {
        "book recipe (SGD lr 0.1, raw pixels)": replace(PRESETS["book"], epochs=epochs, val_fraction=VAL_FRACTION),
        "best preset, constant lr, no early stop": replace(
            BEST, epochs=epochs, schedule="constant", early_stopping=None
        ),
    }
    test_iter = as_one_batch(*data.test, None)
    notes = []
    import matplotlib.pyplot as plt

    fig, fig_axes = plt.subplots(1, 2, figsize=(9, 3.2), sharey=True)
    for ax, (title, config) in zip(fig_axes, runs.items(), strict=True):
        test_curve = TestCurve(test_iter)
        r = fit_softmax(config, data, [test_curve])
        r.seconds -= test_curve.seconds  # the curve's test scoring is not part of the fit
        epochs_axis = r.history.column("epoch")
        train_acc, val_acc = r.history.column("train_accuracy"), r.history.column("val_accuracy")
        test_acc = test_curve.accuracies
        plot(epochs_axis, [train_acc, val_acc, test_acc], "epoch", "accuracy",
             legend=["train", "validation", "test"], ylim=[0.80, 0.90], axes=ax)  # fmt: skip
        ax.axvline(r.best_epoch, color="gray", linestyle=":", linewidth=1)
        ax.set_title(title, fontsize=9)
        best_test = max(test_acc)
        notes.append(
            f"{title}: train accuracy {train_acc[0]:.3f} -> {train_acc[-1]:.3f}; validation best {r.val_accuracy:.4f} "
            f"at epoch {r.best_epoch}, {val_acc[-1]:.4f} at epoch {epochs}; test {test_acc[r.best_epoch - 1]:.4f} "
            f"at the best validation epoch, best {best_test:.4f} at epoch {1 + test_acc.index(best_test)}, "
            f"{test_acc[-1]:.4f} at epoch {epochs}"
        )
    save_figure(fig, FIGURE)
    return notes, FIGURE


def median(values: list[float]) -> float:
    return statistics.median(values)


def report(sk, ours, sweep, notes, seeds: int, curve_epochs: int) -> str:
    sk_time = sk[0][2]
    lines = [
        f"One run of `benchmarks/bench_best.py`: test accuracy and fit time (median over seeds 0..{seeds - 1} for "
        "ours; scikit-learn once). Ours train on 54,000 images and choose the epoch on a stratified 6,000-image "
        "validation split (drawn with each run's seed); the book recipe and scikit-learn train on all 60,000.",
        "",
        "| model | test acc | fit s | / sklearn lbfgs time |",
        "|---|---:|---:|---:|",
    ]
    for name, acc, seconds in sk:
        lines.append(f"| {name} | {acc:.4f} | {seconds:.2f} | {seconds / sk_time:.2f} |")
    for name, config, accs, secs in ours:
        flags = as_flags(config) or "(defaults)"
        accs_text = ", ".join(f"{a:.4f}" for a in accs)
        lines.append(
            f"| {name}: `{flags}` | {median(accs):.4f} ({accs_text}) | {median(secs):.2f} | "
            f"{median(secs) / sk_time:.2f} |"
        )
    lines += [
        "",
        "Sweep around the preset (seed 0; chosen by validation accuracy, test shown as evidence only):",
        "",
        "| lr | weight decay | best epoch | val acc | test acc | fit s |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for config, val, test, best_epoch, seconds in sweep:
        lines.append(
            f"| {config.lr:g} | {config.weight_decay:g} | {best_epoch} | {val:.4f} | {test:.4f} | {seconds:.2f} |"
        )
    lines += ["", f"Curves over {curve_epochs} epochs (`{FIGURE.name}`):", ""]
    lines += [f"- {note}" for note in notes]
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    lines += ["", f"Machine: {machine()}. Measured {when} by `benchmarks/bench_best.py`."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--curve-epochs", type=int, default=50)
    parser.add_argument("--data-dir")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--no-write", action="store_true", help=f"do not update {RESULTS.name} or the figure")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    data = fashion_mnist(args.data_dir)  # the validation splits are carved per fit (`val_fraction`, seeded)
    start = time.perf_counter()
    sk = sklearn_rows(data)
    ours = ours_rows(data, args.seeds)
    sweep = sweep_rows(data)
    notes, _ = curves(data, args.curve_epochs) if not args.no_write else ([], None)
    body = report(sk, ours, sweep, notes, args.seeds, args.curve_epochs)
    print(body)
    print(f"\nbenchmark took {time.perf_counter() - start:.0f} s", file=sys.stderr)
    if not args.no_write:
        old = RESULTS.read_text(encoding="utf-8") if RESULTS.exists() else "# Benchmark results\n"
        atomic_write_text(RESULTS, replace_section(old, SECTION, body))
        print(f"updated {RESULTS}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
