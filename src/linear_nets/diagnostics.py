"""What a trained linear model got right and wrong, as numbers: per-class scores, calibration, its most confident
mistakes, and the residual diagnostics of a linear regression.

The pictures of these numbers are in `linear_nets.plotting`; `linear-nets evaluate` writes both into a run directory
and `linear-nets report` puts them in one HTML page. Everything here is a pure function of arrays (tensors or numpy),
computed in float64.

Classification (true classes y, predicted probabilities P of shape [n, K]):
- per-class scores from the confusion matrix C (C[i, j] = examples of class i predicted as j):
  precision_k = C[k, k] / sum_i C[i, k], recall_k = C[k, k] / sum_j C[k, j], F1_k = 2 P_k R_k / (P_k + R_k),
  support_k = sum_j C[k, j]; a ratio with nothing to divide is 0 (scikit-learn's `zero_division=0`).
- calibration: the confidence of a prediction is its largest probability; split [0, 1] into M equal bins (the first
  one closed), and the expected calibration error is ECE = sum_b (n_b / n) |accuracy_b - confidence_b|
  (Guo et al. 2017, "On Calibration of Modern Neural Networks"; 15 bins as there).

Regression (rows X [n, d], targets y, fitted by yhat = X w + b), with A = [X, 1] and p = d + 1 columns:
- residuals e = y - yhat; leverage h_i = [A (AᵀA)⁻¹ Aᵀ]_ii, computed as the squared row norms of Q in A = QR
  (no normal equations: they square A's condition number);
- s² = sum e² / (n - p) and the internally studentised residuals r_i = e_i / (s sqrt(1 - h_i));
- Cook's distance D_i = r_i² h_i / (p (1 - h_i));
- the normal Q-Q plot's theoretical quantiles Φ⁻¹((i - 1/2) / n), i = 1..n, against the sorted e / s.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

CALIBRATION_BINS = 15
"""Bins of the reliability diagram and the expected calibration error (Guo et al. 2017 use 15)."""


def to_numpy(x: Any, dtype: Any = np.float64) -> np.ndarray:
    """A numpy array of `dtype` (None: the data's own) from a tensor (detached, on the CPU) or anything array-like.

    Example:
        >>> import torch
        >>> to_numpy(torch.ones(2, requires_grad=True))
        array([1., 1.])
    """
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=dtype)


# --- classification ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClassScores:
    """One class's precision, recall, F1 and support (number of examples of the class)."""

    name: str
    precision: float
    recall: float
    f1: float
    support: int


def per_class_scores(confusion: Any, classes: list[str]) -> list[ClassScores]:
    """Precision, recall, F1 and support of each class, from the confusion matrix (rows true, columns predicted).

    Example:
        >>> [(s.name, s.precision, s.recall, s.support) for s in per_class_scores([[3, 1], [0, 2]], ["a", "b"])]
        [('a', 1.0, 0.75, 4), ('b', 0.6666666666666666, 1.0, 2)]
    """
    C = to_numpy(confusion)
    tp, support, predicted = np.diag(C), C.sum(axis=1), C.sum(axis=0)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = np.divide(tp, support, out=np.zeros_like(tp), where=support > 0)
    both = precision + recall
    f1 = np.divide(2 * precision * recall, both, out=np.zeros_like(tp), where=both > 0)
    return [ClassScores(name, float(p), float(r), float(f), int(n))
            for name, p, r, f, n in zip(classes, precision, recall, f1, support, strict=True)]  # fmt: skip


@dataclass(frozen=True)
class Reliability:
    """A reliability diagram's bins: for each of `len(counts)` equal bins of confidence, the examples in it, their
    mean confidence and their accuracy (NaN for an empty bin); and the expected calibration error over them."""

    edges: list[float]
    counts: list[int]
    confidence: list[float]
    accuracy: list[float]
    ece: float


def reliability(probabilities: Any, y: Any, bins: int = CALIBRATION_BINS) -> Reliability:
    """Bin the predictions (`probabilities` `[n, K]`, true classes `y` `[n]`) by confidence, their largest
    probability, and compare each bin's accuracy with its confidence. Of the M = `bins` equal-width bins over [0, 1],
    bin b holds the confidences in (b/M, (b+1)/M], the first also 0.

    Example:
        >>> r = reliability([[0.9, 0.1], [0.8, 0.2], [0.4, 0.6]], [0, 1, 1], bins=2)
        >>> r.counts, round(r.ece, 4)
        ([0, 3], 0.1)
    """
    P, labels = to_numpy(probabilities), to_numpy(y, np.int64)
    confidence, correct = P.max(axis=1), (P.argmax(axis=1) == labels).astype(np.float64)
    which = np.clip(np.ceil(confidence * bins).astype(np.int64) - 1, 0, bins - 1)
    counts = np.bincount(which, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf = np.bincount(which, weights=confidence, minlength=bins) / counts
        mean_acc = np.bincount(which, weights=correct, minlength=bins) / counts
    gaps = np.where(counts > 0, np.abs(mean_acc - mean_conf), 0.0)
    ece = float((counts * gaps).sum() / max(len(labels), 1))
    return Reliability([b / bins for b in range(bins + 1)], counts.tolist(), mean_conf.tolist(), mean_acc.tolist(),
                       ece)  # fmt: skip


def expected_calibration_error(probabilities: Any, y: Any, bins: int = CALIBRATION_BINS) -> float:
    """ECE = sum_b (n_b / n) |accuracy_b - confidence_b| over `bins` equal bins of confidence (see `reliability`).

    Example:
        >>> expected_calibration_error([[1.0, 0.0], [0.0, 1.0]], [0, 1])
        0.0
    """
    return reliability(probabilities, y, bins).ece


def confident_mistakes(probabilities: Any, y: Any, n: int = 12) -> list[int]:
    """The indices of the `n` wrong predictions made with the highest probability, most confident first.

    Example:
        >>> confident_mistakes([[0.9, 0.1], [0.6, 0.4], [0.2, 0.8]], [1, 1, 1])
        [0, 1]
    """
    P, labels = to_numpy(probabilities), to_numpy(y, np.int64)
    predicted, confidence = P.argmax(axis=1), P.max(axis=1)
    wrong = np.flatnonzero(predicted != labels)
    order = np.argsort(-confidence[wrong], kind="stable")  # ties: the earlier example first
    return wrong[order[:n]].tolist()


# --- regression ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RegressionDiagnostics:
    """Per row: fitted values, residuals, leverage, studentised residuals, Cook's distance (numpy arrays, float64);
    the residual standard error s, and the normal Q-Q pairs (theoretical, sorted e / s)."""

    fitted: np.ndarray
    residuals: np.ndarray
    leverage: np.ndarray
    studentized: np.ndarray
    cooks_distance: np.ndarray
    residual_std: float
    qq_theoretical: np.ndarray
    qq_sample: np.ndarray


def regression_diagnostics(X: Any, y: Any, w: Any, b: float) -> RegressionDiagnostics:
    """The residual diagnostics of yhat = X w + b on the rows it was fitted to (formulas in the module docstring).

    With no more rows than coefficients (n <= d + 1) there is no residual variance: s and what divides by it are NaN.

    Example:
        >>> X = np.arange(6.0).reshape(-1, 1); y = 2 * X[:, 0] + 1 + np.array([0.1, -0.1, 0.0, 0.1, -0.1, 0.0])
        >>> d = regression_diagnostics(X, y, [2.0], 1.0)
        >>> round(float(d.leverage.sum()), 6)  # the trace of the hat matrix: p = 2 coefficients
        2.0
    """
    from scipy.stats import norm

    A = to_numpy(X).reshape(len(X), -1)
    target, weights = to_numpy(y).reshape(-1), to_numpy(w).reshape(-1)
    n, p = len(A), A.shape[1] + 1
    fitted = A @ weights + float(b)
    residuals = target - fitted
    Q, _ = np.linalg.qr(np.hstack([A, np.ones((n, 1))]))
    leverage = np.minimum((Q * Q).sum(axis=1), 1.0)
    s = float(np.sqrt(residuals @ residuals / (n - p))) if n > p else np.nan
    with np.errstate(divide="ignore", invalid="ignore"):
        studentized = residuals / (s * np.sqrt(1.0 - leverage))
        cooks = studentized**2 * leverage / (p * (1.0 - leverage))
        standardized = np.sort(residuals) / s
    theoretical = norm.ppf((np.arange(1, n + 1) - 0.5) / n)
    return RegressionDiagnostics(fitted, residuals, leverage, studentized, cooks, s, theoretical, standardized)
