"""NIST's Statistical Reference Datasets for linear least squares (tests/data/nist_strd.json) and the exact
least-squares solution of a table of doubles, in rational arithmetic: the references of the least-squares tests and
of benchmarks/bench_least_squares.py.

For the polynomial sets (Pontius, Wampler1-5, Filip) the table holds x, x², ... rounded to doubles, which is itself
a perturbed problem: a solver is judged against the exact solution of that table (`exact_least_squares`), with
NIST's certified values beside it. "Correct digits" is the log relative error (LRE) NIST's papers use.
"""

from __future__ import annotations

import json
import math
from fractions import Fraction
from pathlib import Path

import numpy as np

DATA = Path(__file__).parent / "data" / "nist_strd.json"


def load_strd() -> dict[str, dict]:
    """The 11 sets by name: x (rows of features), y, degree, intercept, certified values (intercept first)."""
    return json.loads(DATA.read_text())["sets"]


def design(entry: dict) -> tuple[np.ndarray, np.ndarray]:
    """X (float64; the powers x, x², ... of a polynomial set, each rounded to a double) and y of a set."""
    x = np.array(entry["x"], dtype=np.float64)
    if entry["degree"] > 1:
        x = np.column_stack([x[:, 0] ** k for k in range(1, entry["degree"] + 1)])
    return x, np.array(entry["y"], dtype=np.float64)


def exact_least_squares(X: np.ndarray, y: np.ndarray, intercept: bool = True) -> dict[str, list[float] | float]:
    """The exact least-squares fit of the doubles in X and y (columns [X, 1] with an intercept), in rationals:
    coefficients (the intercept last), standard errors, residual standard deviation and R² (uncentred without an
    intercept), each rounded once to a double at the end."""
    A = [[Fraction(float(v)) for v in row] + ([Fraction(1)] if intercept else []) for row in X]
    Y = [Fraction(float(v)) for v in y]
    n, p = len(A), len(A[0])
    gram = [[sum(A[k][i] * A[k][j] for k in range(n)) for j in range(p)] for i in range(p)]
    moment = [sum(A[k][i] * Y[k] for k in range(n)) for i in range(p)]
    M = [gram[i][:] + [Fraction(int(i == j)) for j in range(p)] for i in range(p)]
    for c in range(p):  # Gauss-Jordan: exact, so no pivoting strategy is needed beyond a nonzero pivot
        pivot = next(r for r in range(c, p) if M[r][c] != 0)
        M[c], M[pivot] = M[pivot], M[c]
        M[c] = [v / M[c][c] for v in M[c]]
        for r in range(p):
            if r != c and M[r][c] != 0:
                f = M[r][c]
                M[r] = [a - f * b for a, b in zip(M[r], M[c], strict=True)]
    inverse = [row[p:] for row in M]
    theta = [sum(inverse[i][j] * moment[j] for j in range(p)) for i in range(p)]
    ssr = sum((Y[k] - sum(A[k][j] * theta[j] for j in range(p))) ** 2 for k in range(n))
    mean = sum(Y) / n
    total = sum((v - mean) ** 2 for v in Y) if intercept else sum(v * v for v in Y)
    scale = ssr / (n - p)
    return {
        "coefficients": [float(t) for t in theta],
        "standard_errors": [math.sqrt(float(scale * inverse[i][i])) for i in range(p)],
        "residual_std": math.sqrt(float(scale)),
        "r2": float(1 - ssr / total),
    }


def certified(entry: dict) -> dict[str, list[float] | float]:
    """NIST's certified values, reordered like ours (the intercept last)."""
    c = entry["certified"]
    move = (lambda v: [*v[1:], v[0]]) if entry["intercept"] else (lambda v: list(v))
    return {"coefficients": move(c["coefficients"]), "standard_errors": move(c["standard_errors"]),
            "residual_std": c["residual_std"], "r2": c["r2"]}  # fmt: skip


def lre(value: float, reference: float) -> float:
    """Correct digits: −log10(|x − c| / |c|) (−log10|x| where c = 0), between 0 and 15."""
    if not math.isfinite(value):
        return 0.0
    if value == reference:
        return 15.0
    error = abs(value) if reference == 0 else abs(value - reference) / abs(reference)
    return max(0.0, min(15.0, -math.log10(error)))


def min_lre(values, references) -> float:
    """The fewest correct digits over a vector (NIST's convention for a set)."""
    return min(lre(float(v), float(r)) for v, r in zip(values, references, strict=True))
