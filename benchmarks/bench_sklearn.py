"""The scikit-learn estimators against scikit-learn's own, in one process.

- Fashion-MNIST (60,000 training images, flattened to float32 / 255; the 10,000 test images scored once):
  `SoftmaxClassifier` with the `best` preset's settings (its own 10% validation split and early stopping inside the
  fit) and with the estimator's defaults (full-batch L-BFGS), against `LogisticRegression(solver="lbfgs")` (C=1,
  max_iter=100) and `SGDClassifier(loss="log_loss")` (its defaults). Fit seconds (from data in memory) and test
  accuracy.
- scikit-learn's digits, wine and breast-cancer data sets, each split 75 / 25 (stratified, `random_state=0`) and
  standardised with the training part's statistics: test accuracy of `SoftmaxClassifier` (defaults, and the best
  preset's settings) against `LogisticRegression(max_iter=1000)`; the target is |difference| <= 0.02.
- diabetes: `LinearRegressor(solver="closed-form")` against `LinearRegression`, the largest relative difference of
  the coefficients (and of the intercept).

Prints markdown tables; `--write` also replaces (or appends) the "## scikit-learn estimators" section at the end of
benchmarks/RESULTS.md.

Run: .venv/bin/python benchmarks/bench_sklearn.py [--threads 1] [--write]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).with_name("RESULTS.md")
SECTION = "## scikit-learn estimators"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="torch and BLAS threads for every model (default 1)")
    parser.add_argument("--write", action="store_true", help="write the section into benchmarks/RESULTS.md")
    parser.add_argument("--data-dir", default=None, help="where Fashion-MNIST is (default: the package's search)")
    return parser.parse_args()


ARGS = parse_args() if __name__ == "__main__" else None
if ARGS is not None:  # before numpy is imported: its BLAS reads these once
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[name] = str(ARGS.threads)

import numpy as np  # noqa: E402 (after the thread settings)
import torch  # noqa: E402
from sklearn import __version__ as sklearn_version  # noqa: E402
from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits, load_wine  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.linear_model import LinearRegression, LogisticRegression, SGDClassifier  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

from linear_nets.atomic import atomic_write_text  # noqa: E402
from linear_nets.pipeline.config import SOFTMAX_PRESETS  # noqa: E402
from linear_nets.pipeline.fit import fashion_mnist  # noqa: E402
from linear_nets.sklearn import LinearRegressor, SoftmaxClassifier  # noqa: E402


def best_preset(threads: int) -> SoftmaxClassifier:
    """SoftmaxClassifier with every field of the `best` preset (its seed as random_state)."""
    best = SOFTMAX_PRESETS["best"]
    fields = SoftmaxClassifier._config_fields
    return SoftmaxClassifier(**{f: getattr(best, f) for f in fields if f != "threads"}, random_state=best.seed,
                             threads=threads)  # fmt: skip


def timed_fit(model, X, y) -> tuple[object, float]:
    import warnings

    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # lbfgs at max_iter=100, as in the design's table
        model.fit(X, y)
    return model, time.perf_counter() - started


def fashion_rows(threads: int, data_dir: str | None) -> list[tuple[str, float, float]]:
    data = fashion_mnist(data_dir)
    (X_train, y_train), (X_test, y_test) = data.train, data.test
    X_train = X_train.reshape(X_train.shape[0], -1).numpy().astype(np.float32) / 255
    X_test = X_test.reshape(X_test.shape[0], -1).numpy().astype(np.float32) / 255
    y_train, y_test = y_train.numpy(), y_test.numpy()
    models = [
        ("SoftmaxClassifier, best preset (momentum, lr 0.01, cosine, 8 epochs, standardize, val 0.1, early stop 5)",
         best_preset(threads)),
        ("SoftmaxClassifier, defaults (L-BFGS, 10 x 10 iterations, standardize, wd 1e-4)",
         SoftmaxClassifier(threads=threads)),
        ('LogisticRegression(solver="lbfgs"), C=1, max_iter=100', LogisticRegression()),
        ('SGDClassifier(loss="log_loss"), defaults', SGDClassifier(loss="log_loss", random_state=0)),
    ]  # fmt: skip
    rows = []
    for name, model in models:
        model, seconds = timed_fit(model, X_train, y_train)
        rows.append((name, seconds, float(model.score(X_test, y_test))))
        print(f"  {name}: {seconds:.2f} s, test accuracy {rows[-1][2]:.4f}", file=sys.stderr)
    return rows


def small_rows(threads: int) -> list[tuple[str, int, int, float, float, float, float]]:
    rows = []
    for name, loader in (("digits", load_digits), ("wine", load_wine), ("breast-cancer", load_breast_cancer)):
        X, y = loader(return_X_y=True)
        X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)
        scaler = StandardScaler().fit(X_train)
        X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)
        reference = LogisticRegression(max_iter=1000).fit(X_train, y_train).score(X_test, y_test)
        defaults, seconds = timed_fit(SoftmaxClassifier(threads=threads), X_train, y_train)
        best = best_preset(threads).fit(X_train, y_train)
        rows.append((name, X.shape[0], X.shape[1], reference, defaults.score(X_test, y_test), seconds,
                     best.score(X_test, y_test)))  # fmt: skip
    return rows


def diabetes_row() -> tuple[float, float]:
    X, y = load_diabetes(return_X_y=True)
    ours, reference = LinearRegressor(solver="closed-form").fit(X, y), LinearRegression().fit(X, y)
    coef = float(np.max(np.abs(ours.coef_ - reference.coef_) / np.abs(reference.coef_)))
    intercept = abs(ours.intercept_ - reference.intercept_) / abs(reference.intercept_)
    return coef, float(intercept)


def machine(threads: int) -> str:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    nproc = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return (
        f"{platform.platform()}, {model}, nproc {nproc}, Python {platform.python_version()}, "
        f"torch {torch.__version__}, scikit-learn {sklearn_version}; {threads} torch / BLAS thread(s) for every "
        f"model; load average {load} after the run (a shared machine, busy with other work: times are indicative). "
        "Measured "
        f"{time.strftime('%Y-%m-%d %H:%M %Z')} by `benchmarks/bench_sklearn.py --threads {threads}`."
    )


def render(fashion, small, diabetes, threads: int, seconds: float) -> str:
    lines = [SECTION, ""]
    lines += [
        "One run of `benchmarks/bench_sklearn.py`. Fashion-MNIST: fit on the 60,000 training images (float32 / 255, "
        "flattened; the best preset holds out its own 10% for early stopping), accuracy on the 10,000 test images.",
        "",
        "| model | fit s | test acc |",
        "|---|---:|---:|",
    ]
    lines += [f"| {name} | {s:.2f} | {acc:.4f} |" for name, s, acc in fashion]
    lines += [
        "",
        "Small tables (75 / 25 stratified split, `random_state=0`, standardised on the training part): test accuracy; "
        "target |SoftmaxClassifier (defaults) - LogisticRegression| <= 0.02.",
        "",
        "| data | rows x features | LogisticRegression | SoftmaxClassifier (defaults) | difference | within 0.02 | "
        "defaults fit s | SoftmaxClassifier (best preset) |",
        "|---|---|---:|---:|---:|---|---:|---:|",
    ]
    for name, n, d, reference, ours, fit_s, best in small:
        ok = "yes" if abs(ours - reference) <= 0.02 else "no"
        lines.append(
            f"| {name} | {n} x {d} | {reference:.4f} | {ours:.4f} | {ours - reference:+.4f} | {ok} | {fit_s:.2f} | "
            f"{best:.4f} |"
        )
    coef, intercept = diabetes
    lines += [
        "",
        f'Diabetes (442 x 10): `LinearRegressor(solver="closed-form")` against `LinearRegression`: largest relative '
        f"coefficient difference {coef:.1e}, intercept {intercept:.1e} (target <= 1e-6).",
        "",
        f"Machine: {machine(threads)} Whole run {seconds:.0f} s.",
        "",
    ]
    return "\n".join(lines)


def write_section(text: str) -> None:
    """Replace this script's section of RESULTS.md (up to the next `## ` heading), or append it at the end."""
    current = RESULTS.read_text(encoding="utf-8") if RESULTS.exists() else "# Benchmark results\n"
    start = current.find("\n" + SECTION + "\n")
    if start < 0:
        updated = current.rstrip("\n") + "\n\n" + text
    else:
        end = current.find("\n## ", start + 1)
        updated = current[: start + 1] + text + ("\n" + current[end + 1 :] if end >= 0 else "")
    atomic_write_text(RESULTS, updated)


def main(args: argparse.Namespace) -> None:
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    # warm-up, not timed: the first torch optimiser imports torch._dynamo (about 1.4 s on these machines)
    SoftmaxClassifier(epochs=1, threads=args.threads).fit(np.eye(4), [0, 1, 0, 1])
    best_preset(args.threads).set_params(val_fraction=None, early_stopping=None).fit(np.eye(4), [0, 1, 0, 1])
    print("Fashion-MNIST ...", file=sys.stderr)
    fashion = fashion_rows(args.threads, args.data_dir)
    print("small tables ...", file=sys.stderr)
    small = small_rows(args.threads)
    text = render(fashion, small, diabetes_row(), args.threads, time.perf_counter() - started)
    print(text)
    if args.write:
        write_section(text)
        print(f"wrote the section {SECTION!r} of {RESULTS}", file=sys.stderr)


if __name__ == "__main__":
    main(ARGS)
