"""The closed-form least-squares solution of linear regression (d2l 3.1.1.4), to the last digit.

Append a column of ones to X so the bias is one more weight: A = [X, 1], θ = (w, b) (without an intercept A = X).
Least squares minimises ‖Aθ − y‖², whose minimiser solves the normal equations AᵀA θ = Aᵀy. The book writes
θ = (AᵀA)⁻¹Aᵀy. Forming AᵀA squares the condition number κ(A): a κ of 10⁵ loses 10 of float64's 16 digits instead
of 5. That formula is kept, as `method="normal-equations"`, to be taught beside the stable one; the default never
forms AᵀA:

1. **QR, one chunk of rows at a time (TSQR).** Let Z = [A, y] and ZᵀZ = RᵀR with R upper triangular, (p + 1) x
   (p + 1). Its blocks are R = [[R₁₁, r], [0, ρ]]: θ = R₁₁⁻¹ r and the residual sum of squares is ρ². R is built by
   folding the rows in, chunk by chunk: R ← the R of the Householder QR of [R; Z_chunk], so memory is O(p²) whatever
   the number of rows, and the processes of a data-parallel fit combine their R's with one more QR of them stacked.
   (`method="normal-equations"` adds up ZᵀZ instead and takes R as its Cholesky factor: the same R in exact
   arithmetic, the book's formula in floating point.)
2. **Rank.** The columns of R₁₁ are scaled to unit norm (so units do not matter); a singular value below
   √n · p · ε times the largest (ε = 2.2e-16) counts as zero. Then the minimum-norm solution is returned (the θ of
   smallest ‖θ‖ among all minimisers, from the SVD of R₁₁) and a `RankDeficientWarning` names the dependent columns.
3. **Refinement, a second pass over the rows.** The residual r = y − Aθ is computed exactly rounded (products and
   sums as double-double, Dekker and Knuth's error-free transformations), g = Aᵀr in extended precision; then
   δ = R₁₁⁻¹R₁₁⁻ᵀ g (the corrected semi-normal equations) and θ + δ, and the residual sum of squares of the exact
   minimiser, ‖r‖² − gᵀδ (Pythagoras: r − Aδ is orthogonal to A). It runs when it can change a printed digit:
   κ of the scaled design above 10³, a residual below 10% of ‖y‖ (ρ² then cancels), or a robust covariance asked
   for (which needs each row's residual and leverage anyway). In memory it costs little; streamed, it reads the
   data a second time.

The statistics a statistician reads (standard errors, t, p, intervals, R², F, log-likelihood) are computed from
these in `linear_nets.ols`. `fit_least_squares` runs it all over any source of chunks: a tensor in memory is one
chunk, a table on disk many, a torchrun group one source per process.

Example (NIST's Norris set, cut to 5 rows; the exact answer, from rational arithmetic, is w = 1.004507759019385,
b = -0.4775457111358617):
    >>> X = torch.tensor([[0.2], [337.4], [118.2], [884.6], [10.1]], dtype=torch.float64)
    >>> w, b = least_squares(X, torch.tensor([0.1, 338.8, 118.1, 888.0, 9.2], dtype=torch.float64))
    >>> f"{w.item():.14g}", f"{b.item():.14g}"
    ('1.0045077590194', '-0.47754571113586')
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import scipy.linalg
import torch
from torch import Tensor

from linear_nets.checks import check_covariance, check_normal_equations
from linear_nets.regularization import Moments

EPS = float(np.finfo(np.float64).eps)
REFINE_ABOVE_CONDITION = 1e3  # κ of the column-scaled design above which the second pass refines θ
REFINE_BELOW_RESIDUAL = 0.1  # ... or a residual norm below this share of ‖y‖ (ρ² would then lose digits)


class RankDeficientWarning(UserWarning):
    """The design has dependent columns: the least-squares solution is not unique, the minimum-norm one is returned.
    Silence it with `warnings.simplefilter("ignore", RankDeficientWarning)`, or remove the columns it names."""


Chunks = Callable[[], Iterable[np.ndarray]]
"""A source of rows: each call starts a pass and yields chunks Zᵀ = [X, 1, y]ᵀ (float64 `[p + 1, n]`, a row per
column of the design: the features, the ones when there is an intercept, then y). A pass may be run twice. The
chunks are trusted: their source checks them (`checks.check_design`: NaN, ±inf, magnitudes, no rows at all)."""


# --- pass 1: the triangular factor -------------------------------------------------------------------------------


@dataclass
class Factor:
    """Pass 1 over the rows: the triangular factor R of Z = [A, y] (`fold`), or for the normal equations the sums
    ZᵀZ; and y's moments. `add` takes one chunk Zᵀ, `combine` the factors of every process."""

    method: str = "qr"
    matrix: np.ndarray | None = None  # R (qr) or ZᵀZ (normal equations), (p + 1) x (p + 1)
    y: Moments = field(default_factory=Moments)  # y's count, mean and centred sum of squares (the total SS)

    def add(self, Zt: np.ndarray) -> None:
        """Fold one chunk of rows in."""
        if Zt.shape[1] == 0:
            return
        if self.method == "qr":
            self.matrix = fold(self.matrix, Zt)
        else:
            Z = torch.from_numpy(Zt)
            gram = (Z @ Z.T).numpy()
            self.matrix = gram if self.matrix is None else self.matrix + gram
        self.y.add(Zt[-1])

    @classmethod
    def combine(cls, factors: Sequence[Factor]) -> Factor:
        """The factor of every process's rows, from each process's own (their R's stacked and factored once more).

        Example:
            >>> Z = np.array([[1.0, 0.0, 1.0], [1.0, 1.0, 3.0], [1.0, 2.0, 5.0]])
            >>> parts = [Factor(), Factor()]; parts[0].add(Z[:1].T); parts[1].add(Z[1:].T)
            >>> whole = Factor(); whole.add(Z.T)
            >>> np.allclose(np.abs(Factor.combine(parts).matrix), np.abs(whole.matrix)), Factor.combine(parts).y.n
            (True, 3)
        """
        total = cls(factors[0].method)
        for factor in factors:
            if factor.matrix is None:
                continue
            if total.matrix is None:
                total.matrix = factor.matrix
            elif total.method == "qr":
                total.matrix = fold(total.matrix, factor.matrix.T)
            else:
                total.matrix = total.matrix + factor.matrix
            total.y.merge(factor.y)
        return total

    def triangular(self) -> np.ndarray:
        """R, upper triangular with ZᵀZ = RᵀR (of at least one row). For the normal equations, None when ZᵀZ is not
        positive definite in floating point: the book's formula has no answer there."""
        if self.method == "qr":
            return self.matrix
        try:
            return scipy.linalg.cholesky(self.matrix, lower=False)
        except np.linalg.LinAlgError:
            m = self.matrix.shape[0]
            try:  # ZᵀZ is singular but AᵀA may not be (an exact fit): factor AᵀA alone, ρ = 0
                R = np.zeros((m, m))
                R[:-1, :-1] = scipy.linalg.cholesky(self.matrix[:-1, :-1], lower=False)
                R[:-1, -1] = scipy.linalg.solve_triangular(R[:-1, :-1], self.matrix[:-1, -1], trans="T")
                return R
            except np.linalg.LinAlgError:
                return None


def fold(R: np.ndarray | None, Zt: np.ndarray) -> np.ndarray:
    """The TSQR step: the R factor (m x m, upper triangular, rows padded with zeros) of [R; Z] for a chunk
    Zᵀ `[m, n]`, so that RᵀR grows by ZᵀZ. Householder QR (LAPACK geqrf) on the stacked rows.

    Example:
        >>> Z = np.array([[3.0, 4.0], [0.0, 5.0]])
        >>> R = fold(fold(None, Z[:1].T), Z[1:].T)
        >>> np.allclose(R.T @ R, Z.T @ Z)
        True
    """
    stacked = Zt if R is None else np.hstack([R.T, Zt])  # [R; Z]ᵀ: its transpose is the matrix LAPACK factors
    # torch's LAPACK, not scipy's: it runs on the threads torch is given (the CLI's choice for a busy machine);
    # scipy's OpenBLAS starts a thread per core, which under load took 0.2-0.8 s per 2^17 rows instead of 0.1 s.
    factor = torch.linalg.qr(torch.from_numpy(stacked).T, mode="r")[1].numpy()  # min(rows, m) x m
    return np.pad(factor, ((0, len(Zt) - len(factor)), (0, 0)))


# --- the solution from R -------------------------------------------------------------------------------------------


@dataclass
class Solution:
    """θ and what the statistics need from R: `inverse` with (AᵀA)⁻¹ = inverse · inverseᵀ (R₁₁⁻¹, or the
    pseudo-inverse's factor when rank deficient), the rank and the dependent columns, κ of A (2-norm, as
    statsmodels' `condition_number`) and of the column-scaled A, the residual sum of squares ρ², ‖y‖²."""

    theta: np.ndarray
    inverse: np.ndarray
    rank: int
    dependent: list[int]
    condition_number: float
    scaled_condition_number: float
    ssr: float
    y_norm2: float
    refined: bool = False


def solve(R: np.ndarray, n: int) -> Solution:
    """θ = R₁₁⁻¹ r from the factor R of [A, y] of n rows; the minimum-norm θ when A is rank deficient.

    Example:
        >>> Z = np.array([[1.0, 0.0, 1.0], [1.0, 1.0, 3.0], [1.0, 2.0, 5.0]])  # y = 1 + 2x
        >>> s = solve(fold(None, Z.T), 3)
        >>> np.round(s.theta, 12).tolist(), s.rank, round(s.ssr, 20)
        ([1.0, 2.0], 2, 0.0)
    """
    p = R.shape[0] - 1
    R11, r = R[:p, :p], R[:p, p]
    norms = np.linalg.norm(R11, axis=0)
    scale = np.where(norms > 0, norms, 1.0)
    scaled = np.linalg.svd(R11 / scale, compute_uv=False) if p else np.zeros(0)
    singular = np.linalg.svd(R11, compute_uv=False) if p else np.zeros(0)
    tolerance = math.sqrt(max(n, 1)) * max(p, 1) * EPS
    rank = int((scaled > tolerance * scaled[0]).sum()) if p and scaled[0] > 0 else 0
    ssr, y_norm2 = float(R[p, p] ** 2), float(R[:, p] @ R[:, p])
    kappa = float(singular[0] / singular[-1]) if p and singular[-1] > 0 else math.inf
    scaled_kappa = float(scaled[0] / scaled[-1]) if p and scaled[-1] > 0 else math.inf
    if rank == p:
        inverse = scipy.linalg.solve_triangular(R11, np.eye(p))
        theta = inverse @ r
        return Solution(theta, inverse, p, [], kappa, scaled_kappa, ssr, y_norm2)
    # Rank deficient: the minimum-norm solution in the original units, keeping as many directions as the scaled
    # design has; the dependent columns are those a column-pivoted QR of the scaled R₁₁ puts last. The last column
    # (the intercept, when there is one) goes first, so that a tie (a constant feature) names the feature.
    U, s, Vt = np.linalg.svd(R11)
    inverse = Vt[:rank].T / s[:rank]  # pinv(AᵀA) = inverse · inverseᵀ
    theta = inverse @ (U[:, :rank].T @ r)
    ssr = float(max(R[:, p] @ R[:, p] - (U[:, :rank].T @ r) @ (U[:, :rank].T @ r), 0.0))
    order = np.r_[p - 1, 0 : p - 1]
    prefer = np.r_[2.0, np.ones(p - 1)]  # the pivoting takes the largest column first: this one, on a tie
    pivots = scipy.linalg.qr((R11 / scale)[:, order] * prefer, pivoting=True, mode="r")[1]
    dependent = sorted(order[pivots[rank:]].tolist())
    return Solution(theta, inverse, rank, dependent, kappa, scaled_kappa, ssr, y_norm2)


# --- pass 2: exact residuals, refinement, leverage --------------------------------------------------------------

_SPLIT = 134217729.0  # 2^27 + 1: splits a double into two halves of 26 bits whose products are exact


def _two_product(a: np.ndarray, b: float) -> tuple[np.ndarray, np.ndarray]:
    """a·b = p + e exactly (Dekker)."""
    p = a * b
    c = _SPLIT * a
    a_hi = c - (c - a)
    a_lo = a - a_hi
    c = _SPLIT * b
    b_hi = c - (c - b)
    b_lo = b - b_hi
    return p, ((a_hi * b_hi - p) + a_hi * b_lo + a_lo * b_hi) + a_lo * b_lo


def _two_sum(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """a + b = s + e exactly (Knuth)."""
    s = a + b
    v = s - a
    return s, (a - (s - v)) + (b - v)


def exact_residuals(Zt: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """r = y − Aθ for a chunk Zᵀ = [A, y]ᵀ, each product and sum carried as a double-double, so r is the exactly
    rounded residual of this θ (in numpy's extended precision where it has one), however much y and Aθ cancel.

    Example:
        >>> Zt = np.array([[1e16], [1.0], [1e16 + 2]])  # one row: a = (1e16, 1), y = 1e16 + 2
        >>> theta = np.array([1.0, 1.0])
        >>> float(exact_residuals(Zt, theta)[0]), float(Zt[-1, 0] - Zt[:-1, 0] @ theta)  # plain float64: 2 − 1 lost
        (1.0, 2.0)
    """
    total, error = Zt[-1].copy(), np.zeros(Zt.shape[1])
    for column, weight in zip(Zt[:-1], theta, strict=True):
        product, product_error = _two_product(column, float(weight))
        total, sum_error = _two_sum(total, -product)
        error += sum_error - product_error
    return total.astype(np.longdouble) + error


class Residuals:
    """Pass 2 over the rows for a θ: g = Aᵀr and ‖r‖² in extended precision (the refinement), and with a robust
    covariance the "meat" Σ wᵢ qᵢqᵢᵀ in the coordinates q = R₁₁⁻ᵀa of each row (its leverage is hᵢ = ‖qᵢ‖²), with
    wᵢ = rᵢ² (HC0, HC1), rᵢ²/(1 − hᵢ) (HC2) or rᵢ²/(1 − hᵢ)² (HC3)."""

    def __init__(self, theta: np.ndarray, inverse: np.ndarray, cov_type: str = "nonrobust") -> None:
        p = len(theta)
        self.theta, self.inverse, self.cov_type = theta, inverse, cov_type  # inverse: R₁₁⁻¹
        self.g, self.rr = np.zeros(p, dtype=np.longdouble), np.longdouble(0)
        self.meat = None if cov_type == "nonrobust" else np.zeros((p, p))
        self.max_leverage, self.max_leverage_row, self.rows = 0.0, 0, 0  # the row 1-based, among this pass's rows

    def add(self, Zt: np.ndarray) -> None:
        r = exact_residuals(Zt, self.theta)
        A = Zt[:-1]
        self.g += A.astype(np.longdouble) @ r
        self.rr += r @ r
        if self.meat is not None:
            Q = self.inverse.T @ A  # qᵢ as columns: Q = R₁₁⁻ᵀAᵀ
            leverage = (Q * Q).sum(0)
            if len(leverage) and leverage.max() > self.max_leverage:
                self.max_leverage = float(leverage.max())
                self.max_leverage_row = self.rows + int(leverage.argmax()) + 1
            weight = np.asarray(r, dtype=np.float64) ** 2
            if self.cov_type in ("HC2", "HC3"):
                weight = weight / (1 - leverage) ** (2 if self.cov_type == "HC3" else 1)
            self.meat += (Q * weight) @ Q.T
        self.rows += Zt.shape[1]

    @classmethod
    def combine(cls, parts: Sequence[Residuals]) -> Residuals:
        """The sums over every process's rows, from each process's own (rows numbered in rank order)."""
        total = cls(parts[0].theta, parts[0].inverse, parts[0].cov_type)
        for part in parts:
            total.g += part.g
            total.rr += part.rr
            if total.meat is not None and part.meat is not None:
                total.meat += part.meat
            if part.max_leverage > total.max_leverage:
                total.max_leverage, total.max_leverage_row = part.max_leverage, total.rows + part.max_leverage_row
            total.rows += part.rows
        return total


def refine(solution: Solution, residuals: Residuals) -> Solution:
    """θ + δ with δ = R₁₁⁻¹R₁₁⁻ᵀ Aᵀr, and the residual sum of squares of the exact minimiser, ‖r‖² − gᵀδ."""
    g = residuals.g.astype(np.float64)
    delta = solution.inverse @ (solution.inverse.T @ g)
    ssr = float(residuals.rr - (residuals.g * delta.astype(np.longdouble)).sum())
    return replace(solution, theta=solution.theta + delta, ssr=max(ssr, 0.0), refined=True)


# --- the whole fit ------------------------------------------------------------------------------------------------


def default_names(count: int) -> list[str]:
    """The names of `count` unnamed features in a least-squares summary, as statsmodels names them.

    Example:
        >>> default_names(3)
        ['x1', 'x2', 'x3']
    """
    return [f"x{j + 1}" for j in range(count)]


def fit_least_squares(
    chunks: Chunks,
    names: Sequence[str] | None,
    *,
    fit_intercept: bool = True,
    method: str = "qr",
    cov_type: str = "nonrobust",
    alpha: float = 0.05,
    gather: Callable[[Any], list[Any]] | None = None,
    refine_with_second_pass: bool | None = None,
) -> Any:
    """Least squares over every chunk `chunks()` yields (see `Chunks`), with its statistics: an `ols.OLSResult`.

    `chunks` is called once, or twice when a second pass refines θ (`refine_with_second_pass`: None when it can change
    a printed digit, see the module's docstring; a bool forces it; QR only) or a robust covariance (`cov_type`,
    statsmodels' names) needs residuals. `names` name the rows of Zᵀ before the ones ("intercept"; None: x1, x2, ...);
    the intervals are at 1 − alpha; `gather` (`World.gather`: every process's value, in rank order) joins the
    processes of a data-parallel fit, each of whose `chunks` yields its share of the rows.
    Raises `DataError` where the normal equations have no answer or a robust covariance cannot be computed, and
    warns `RankDeficientWarning`, naming the dependent columns.

    Example:
        >>> Zt = np.array([[0.0, 1.0, 2.0, 3.0], [1.0, 1.0, 1.0, 1.0], [1.0, 3.2, 4.8, 7.1]])
        >>> result = fit_least_squares(lambda: [Zt], ["x"])
        >>> [round(v, 6) for v in result.params.tolist()], round(result.rsquared, 6)
        ([1.99, 1.04], 0.995625)
    """
    from linear_nets.ols import OLSResult

    gather = gather if gather is not None else (lambda value: [value])
    factor = Factor(method)
    for Zt in chunks():
        factor.add(Zt)
    factor = Factor.combine(gather(factor))
    n = factor.y.n
    R = factor.triangular() if method == "qr" else check_normal_equations(factor.triangular())
    solution = solve(R, n)
    p = len(solution.theta)
    names = names if names is not None else default_names(p - fit_intercept)
    columns = [*names, *(["intercept"] if fit_intercept else [])]
    if solution.dependent:
        warnings.warn(
            f"the design has rank {solution.rank} < {p} columns: "
            f"{', '.join(repr(columns[j]) for j in solution.dependent)} "
            f"{'is a linear combination' if len(solution.dependent) == 1 else 'are linear combinations'} of the "
            "others (collinear or constant features, or too few rows); the minimum-norm solution is returned",
            RankDeficientWarning,
            stacklevel=2,
        )
    if refine_with_second_pass is None:  # the module's docstring, point 3
        small_residual = solution.ssr < (REFINE_BELOW_RESIDUAL**2) * solution.y_norm2
        refine_with_second_pass = solution.scaled_condition_number > REFINE_ABOVE_CONDITION or small_residual
    second = method == "qr" and solution.rank == p and (refine_with_second_pass or cov_type != "nonrobust")
    check_covariance(cov_type, unique=second)  # a robust covariance is computed in the second pass only
    meat = None
    if second:
        residuals = Residuals(solution.theta, solution.inverse, cov_type)
        for Zt in chunks():
            residuals.add(Zt)
        residuals = Residuals.combine(gather(residuals))
        solution = refine(solution, residuals)
        meat = residuals.meat
        check_covariance(cov_type, True, residuals.max_leverage, residuals.max_leverage_row)
    total_ss = float(factor.y.m2) if fit_intercept else solution.y_norm2
    return OLSResult.build(columns, solution, n, total_ss, fit_intercept=fit_intercept, cov_type=cov_type,
                           alpha=alpha, meat=meat, method=method)  # fmt: skip


def design_chunk(X: Tensor | np.ndarray, y: Tensor | np.ndarray, fit_intercept: bool = True) -> np.ndarray:
    """Zᵀ = [X, 1, y]ᵀ (float64 `[d + 2, n]`; without the ones when not `fit_intercept`) from X `[n, d]` and y `[n]`.

    Example:
        >>> design_chunk(np.array([[2.0], [3.0]]), np.array([5.0, 7.0])).tolist()
        [[2.0, 3.0], [1.0, 1.0], [5.0, 7.0]]
    """
    X, y = (np.asarray(v.detach().cpu() if isinstance(v, Tensor) else v, dtype=np.float64) for v in (X, y))
    rows = [X.T, *([np.ones((1, len(y)))] if fit_intercept else []), y.reshape(1, -1)]
    return np.ascontiguousarray(np.vstack(rows))


def ols(
    X: Tensor | np.ndarray,
    y: Tensor | np.ndarray,
    names: Sequence[str] | None = None,
    *,
    fit_intercept: bool = True,
    method: str = "qr",
    cov_type: str = "nonrobust",
    alpha: float = 0.05,
) -> Any:
    """Least squares of y on X in memory with the OLS summary (`ols.OLSResult`): one chunk of `fit_least_squares`.

    Example:
        >>> X = torch.tensor([[1.0], [2.0], [3.0], [4.0]]); y = torch.tensor([2.1, 3.9, 6.2, 7.8])
        >>> result = ols(X, y, ["x"])
        >>> round(float(result.params[0]), 6), round(float(result.bse[0]), 6), result.df_resid
        (1.94, 0.090554, 2)
    """
    Zt = design_chunk(X, y, fit_intercept)
    return fit_least_squares(lambda: [Zt], names, fit_intercept=fit_intercept, method=method, cov_type=cov_type,
                             alpha=alpha)  # fmt: skip


def least_squares(X: Tensor, y: Tensor, *, fit_intercept: bool = True) -> tuple[Tensor, Tensor]:
    """Least-squares w `[d]` and b (0-d) for y ≈ Xw + b, in float64 (QR, refined: see the module's docstring), from
    X `[n, d]` and y `[n]` or `[n, 1]`; `fit_intercept=False` fits through the origin (b = 0). Warns
    `RankDeficientWarning` for a rank-deficient design, whose minimum-norm solution it returns.

    Example:
        >>> X = torch.tensor([[0.0], [1.0], [2.0]])
        >>> w, b = least_squares(X, 3 * X[:, 0] + 1)
        >>> round(w.item(), 6), round(b.item(), 6)
        (3.0, 1.0)
    """
    return as_tensors(ols(X, y, fit_intercept=fit_intercept))


def least_squares_streaming(chunks: Iterable[tuple[Tensor, Tensor]], *, fit_intercept: bool = True
                            ) -> tuple[Tensor, Tensor]:  # fmt: skip
    """Least-squares w and b from an iterable of (X, y) chunks, folding each into R as it comes (TSQR); a list can
    be read twice, so it is refined like the in-memory fit.

    Example:
        >>> X = torch.tensor([[0.0, 1.0], [1.0, 0.0], [2.0, 3.0], [1.0, 1.0]]); y = X @ torch.tensor([1.0, 2.0]) + 3
        >>> w, b = least_squares_streaming([(X[:2], y[:2]), (X[2:], y[2:])])
        >>> [round(v, 6) for v in w.tolist()], round(b.item(), 6)
        ([1.0, 2.0], 3.0)
    """
    parts = [design_chunk(X, y, fit_intercept) for X, y in chunks]
    return as_tensors(fit_least_squares(lambda: parts, None, fit_intercept=fit_intercept))


def as_tensors(result: Any) -> tuple[Tensor, Tensor]:
    """A least-squares result's w `[d]` and b (0-d) as float64 tensors (copies: a caller may change them)."""
    return torch.from_numpy(result.w.copy()), torch.tensor(result.b, dtype=torch.float64)
