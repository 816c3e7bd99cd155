"""The closed-form least-squares solution of linear regression (d2l 3.1.1.4), in memory and streaming.

Append a column of ones to X so the bias is one more weight: A = [X, 1], θ = (w, b). Least squares minimises
‖Aθ − y‖², whose minimiser solves the normal equations AᵀA θ = Aᵀy. The book writes θ = (AᵀA)⁻¹Aᵀy; forming
that inverse squares the condition number and fails when AᵀA is singular, so this module never does:

- `least_squares(X, y)` factorises A itself (`torch.linalg.lstsq`, SVD-based driver 'gelsd', float64).
- `StreamingLeastSquares` accumulates the (d+1) x (d+1) Gram matrix AᵀA and the vector Aᵀy one chunk at a
  time, so data larger than memory is solved in one pass, then solves the normal equations through the
  symmetric eigendecomposition of the column-scaled Gram matrix (a pseudo-inverse that drops the numerically
  zero eigenvalues). Both sums come from one matrix product per chunk, Z Zᵀ with Z = [X, 1, y]ᵀ; a reader that
  fills Z itself (`design_rows`, `StreamingLeastSquares.update_transposed`) saves every copy in between.

Rank-deficient A (collinear or constant columns, fewer rows than d + 1): both return the *minimum-norm*
solution, the θ = (w, b) of smallest ‖θ‖ among all minimisers, and emit a `RankDeficientWarning`. Note the
norm includes b; scikit-learn's `LinearRegression` centres the data instead and minimises ‖w‖ only, so the two
agree whenever A has full column rank and may differ otherwise.

NaN or inf in X or y raise `DataError` (streaming: also values so large, above about 1e154, that their squares
overflow float64).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable

import numpy as np
import torch
from torch import Tensor

from linear_nets.errors import DataError


class RankDeficientWarning(UserWarning):
    """[X, 1] has dependent columns: the least-squares solution is not unique, the minimum-norm one is returned.

    Silence it with `warnings.simplefilter("ignore", RankDeficientWarning)`, or remove the redundant features.
    """


# Rows of Z are padded with zeros to a multiple of this: torch's dgemm (MKL) computed Z Zᵀ about 1.5x faster for
# 36 rows than for 33, 34 or 35 (32 features + ones + y; measured on the 2-core AMD EPYC of
# benchmarks/RESULTS-tables.md). Zero rows add nothing to the sums, and are sliced off before they are kept.
ROW_MULTIPLE = 4


def _as_float64(X: Tensor, y: Tensor, d: int | None = None, check_finite: bool = True) -> tuple[Tensor, Tensor]:
    X = torch.as_tensor(X, dtype=torch.float64)
    y = torch.as_tensor(y, dtype=torch.float64)
    if X.dim() != 2:
        raise DataError(f"X must be a matrix [n, d], got shape {list(X.shape)}")
    if d is not None and X.shape[1] != d:
        raise DataError(f"X has {X.shape[1]} columns but earlier chunks had {d}: every chunk needs the same features")
    if y.numel() != X.shape[0]:
        raise DataError(f"y has {y.numel()} values but X has {X.shape[0]} rows: they must agree")
    if not check_finite:
        return X, y.reshape(-1, 1)
    if not torch.isfinite(X).all():
        raise DataError("X contains NaN or inf: clean the data first")
    if not torch.isfinite(y).all():
        raise DataError("y contains NaN or inf: clean the data first")
    return X, y.reshape(-1, 1)


def _augment(X: Tensor) -> Tensor:
    return torch.cat([X, torch.ones(X.shape[0], 1, dtype=X.dtype)], dim=1)


def _warn_rank(rank: int, cols: int) -> None:
    if rank < cols:
        warnings.warn(
            f"[X, 1] has rank {rank} < {cols} columns (collinear or constant features, or too few rows): "
            "returning the minimum-norm least-squares solution",
            RankDeficientWarning,
            stacklevel=3,
        )


def least_squares(X: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
    """Least-squares w and b for y ≈ Xw + b, in float64: θ = argmin ‖[X, 1]θ − y‖² via `torch.linalg.lstsq`.

    Args:
        X: features `[n, d]`; y: targets `[n]` or `[n, 1]`.

    Returns:
        w `[d]` and b (0-d), float64.

    Raises:
        DataError: shapes disagree or the data hold NaN/inf.

    Warns:
        RankDeficientWarning: [X, 1] is rank deficient; the minimum-norm solution is returned.

    Example:
        >>> X = torch.tensor([[0.0], [1.0], [2.0]])
        >>> w, b = least_squares(X, 3 * X[:, 0] + 1)
        >>> round(w.item(), 6), round(b.item(), 6)
        (3.0, 1.0)
    """
    X, y = _as_float64(X, y)
    A = _augment(X)
    result = torch.linalg.lstsq(A, y, driver="gelsd")
    _warn_rank(int(result.rank), A.shape[1])
    theta = result.solution.reshape(-1)
    return theta[:-1], theta[-1]


def design_rows(num_features: int, num_rows: int) -> Tensor:
    """Room for `num_rows` rows of `num_features` features as Z = [X, 1, y]ᵀ, for
    `StreamingLeastSquares.update_transposed`: float64 `[m, num_rows]`, m >= d + 2, with the row of ones (Z[d])
    and the zero rows after y in place, and Xᵀ (Z[:d]) and y (Z[d + 1]) left for the caller to write. Reuse it
    for every chunk (a prefix of its columns, Z[:, :n], for a shorter one).

    Example:
        >>> Z = design_rows(2, 3)
        >>> Z[:2] = torch.tensor([[0.0, 1.0, 2.0], [1.0, 0.0, 1.0]]); Z[3] = torch.tensor([1.0, 2.0, 4.0])
        >>> Z.tolist()
        [[0.0, 1.0, 2.0], [1.0, 0.0, 1.0], [1.0, 1.0, 1.0], [1.0, 2.0, 4.0]]
    """
    rows = -(-(num_features + 2) // ROW_MULTIPLE) * ROW_MULTIPLE
    # Allocated by numpy, which asks Linux for transparent huge pages for large arrays, and torch does not: first
    # writing a 29 MB buffer took 24 ms in 4 KiB pages, 3 ms in huge ones (measured; a 10^5-row fit takes ~60 ms).
    Z = np.empty((rows, num_rows))
    Z[num_features] = 1
    Z[num_features + 2 :] = 0
    return torch.from_numpy(Z)


class StreamingLeastSquares:
    """Least squares over data fed in chunks: accumulate AᵀA and Aᵀy (A = [X, 1]), then `solve()`.

    Memory is O(d²) whatever the number of rows. The Gram matrix squares the condition number of A: after
    scaling the columns of A to unit norm, directions whose singular value is below about sqrt((d+1)·eps)
    ≈ 1.5e-8 times the largest count as rank deficient (`least_squares` on the whole matrix resolves down to
    about eps·n), and the answer carries about cond(A)² · eps relative error instead of cond(A) · eps.

    Both sums are blocks of one matrix, S = Σ zzᵀ over the rows z = (x, 1, y): S = [[AᵀA, Aᵀy], [yᵀA, yᵀy]],
    added to chunk by chunk as Z Zᵀ, Z = [X, 1, y]ᵀ. `update(X, y)` builds Z from tensors; a reader that writes
    rows straight into a `design_rows` buffer calls `update_transposed(Z, d)`.

    Example:
        >>> X = torch.arange(8.0).reshape(4, 2); y = X @ torch.tensor([1.0, -2.0]) + 0.5
        >>> solver = StreamingLeastSquares()
        >>> solver.update(X[:2], y[:2]); solver.update(X[2:], y[2:])
        >>> solver.num_examples, solver.gram.shape, solver.moment.shape
        (4, torch.Size([3, 3]), torch.Size([3, 1]))
    """

    def __init__(self) -> None:
        self.sums: Tensor | None = None  # S, (d + 2) x (d + 2), float64
        self.num_examples = 0

    @property
    def gram(self) -> Tensor | None:
        """AᵀA, (d + 1) x (d + 1)."""
        return None if self.sums is None else self.sums[:-1, :-1]

    @property
    def moment(self) -> Tensor | None:
        """Aᵀy, (d + 1) x 1."""
        return None if self.sums is None else self.sums[:-1, -1:]

    def update(self, X: Tensor, y: Tensor) -> None:
        """Add one chunk of rows: gram += AᵀA, moment += Aᵀy.

        Raises:
            DataError: shapes disagree (with each other or with earlier chunks), or the chunk holds NaN, ±inf or
                values whose squares overflow; the sums are then left as they were.
        """
        d = None if self.sums is None else self.sums.shape[0] - 2
        X, y = _as_float64(X, y, d, check_finite=False)  # update_transposed checks the whole chunk at once
        d = X.shape[1]
        Z = design_rows(d, X.shape[0])
        Z[:d] = X.T
        Z[d + 1] = y[:, 0]
        self.update_transposed(Z, d)

    def update_transposed(self, Z: Tensor, num_features: int) -> None:
        """Add one chunk given as Z = [X, 1, y]ᵀ, float64 `[m, n]`: Z[:d] = Xᵀ, Z[d] = 1, Z[d + 1] = y, any rows
        after that zero (`design_rows` makes such a buffer). Raises as `update`."""
        d = num_features
        if self.sums is not None and self.sums.shape[0] != d + 2:
            earlier = self.sums.shape[0] - 2
            raise DataError(f"X has {d} columns but earlier chunks had {earlier}: every chunk needs the same features")
        if Z.dtype != torch.float64 or Z.dim() != 2 or Z.shape[0] < d + 2:
            raise DataError(f"Z must be float64 [d + 2 = {d + 2} or more, n], got {Z.dtype} {list(Z.shape)}")
        chunk = (Z @ Z.T)[: d + 2, : d + 2]
        # No separate NaN/inf scan of Z (per 2^17-row chunk, torch.isfinite took 69 ms, numpy's 5 ms, Z Zᵀ 18 ms;
        # measured): a NaN or ±inf anywhere in a row of Z makes that row's sum of squares, on the diagonal, NaN or
        # inf, so the diagonal is checked, and only then is Z itself searched.
        if not torch.isfinite(chunk.diagonal()).all():
            raise _not_finite(Z, d)
        if self.sums is None:
            self.sums = chunk.clone()
        else:
            self.sums += chunk
        self.num_examples += Z.shape[1]

    def combine(self, reduce: Callable[[Tensor], Tensor], num_features: int) -> None:
        """Replace the sums by their totals over the processes of a data-parallel fit (`reduce` adds a tensor up over
        them: an all-reduce), so that every process solves for all the rows; a process that had none adds zeros.

        Example:
            >>> solver = StreamingLeastSquares()
            >>> solver.combine(lambda t: 2 * t, num_features=1)  # no rows here; a stand-in for two processes
            >>> solver.num_examples, solver.gram.shape
            (0, torch.Size([2, 2]))
        """
        d = num_features
        sums = self.sums if self.sums is not None else torch.zeros(d + 2, d + 2, dtype=torch.float64)
        if sums.shape[0] != d + 2:
            raise DataError(f"these sums have {sums.shape[0] - 2} features, not {d}")
        total = reduce(torch.cat([sums.reshape(-1), sums.new_tensor([self.num_examples])]))
        self.sums, self.num_examples = total[:-1].reshape(d + 2, d + 2), int(total[-1].item())

    def solve(self) -> tuple[Tensor, Tensor]:
        """Solve AᵀA θ = Aᵀy for the minimum-norm θ; return w `[d]` and b (0-d), float64.

        Raises:
            DataError: no data was added.

        Warns:
            RankDeficientWarning: the Gram matrix is (numerically) singular.
        """
        gram, moment = self.gram, self.moment
        if gram is None or moment is None:
            raise DataError("no data: call update(X, y) with at least one chunk before solve()")
        # Scale every column of A to unit norm first (Jacobi), so the rank decision does not depend on the
        # features' units: a feature in micrometres next to one in kilometres is not "numerically zero".
        norms = gram.diagonal().sqrt()
        scale = torch.where(norms > 0, 1 / norms, torch.ones_like(norms))
        eigenvalues, V = torch.linalg.eigh(scale[:, None] * gram * scale[None, :])
        rank = int((eigenvalues > self._cutoff(eigenvalues)).sum())
        if rank == len(eigenvalues):
            theta = scale * (V @ ((V.T @ (scale * moment[:, 0])) / eigenvalues))
        else:
            # The minimum-norm solution is defined in the original units: pseudo-invert the unscaled Gram
            # matrix, keeping as many directions as the scaled one has.
            _warn_rank(rank, len(eigenvalues))
            eigenvalues, V = torch.linalg.eigh(gram)
            keep = slice(len(eigenvalues) - rank, None)  # eigh sorts ascending: the largest `rank` eigenvalues
            theta = V[:, keep] @ ((V[:, keep].T @ moment[:, 0]) / eigenvalues[keep])
        return theta[:-1], theta[-1]

    @staticmethod
    def _cutoff(eigenvalues: Tensor) -> Tensor:
        # eigh is accurate to about eps * largest eigenvalue; anything smaller is noise, i.e. a null direction.
        return eigenvalues[-1].clamp(min=0) * len(eigenvalues) * torch.finfo(torch.float64).eps


def least_squares_streaming(chunks: Iterable[tuple[Tensor, Tensor]]) -> tuple[Tensor, Tensor]:
    """Least-squares w and b from an iterable of (X, y) chunks, in one pass (see `StreamingLeastSquares`).

    Example:
        >>> X = torch.tensor([[0.0, 1.0], [1.0, 0.0], [2.0, 3.0], [1.0, 1.0]]); y = X @ torch.tensor([1.0, 2.0]) + 3
        >>> w, b = least_squares_streaming([(X[:2], y[:2]), (X[2:], y[2:])])
        >>> [round(v, 6) for v in w.tolist()], round(b.item(), 6)
        ([1.0, 2.0], 3.0)
    """
    solver = StreamingLeastSquares()
    for X, y in chunks:
        solver.update(X, y)
    return solver.solve()


def _not_finite(Z: Tensor, d: int) -> DataError:
    """The error for a chunk whose sums of squares are not finite (the rare path: Z is scanned only here)."""
    if not torch.isfinite(Z[:d]).all():
        return DataError("X contains NaN or inf: clean the data first")
    if not torch.isfinite(Z[d + 1]).all():
        return DataError("y contains NaN or inf: clean the data first")
    return DataError(
        "X or y holds values too large for float64 sums of squares (above about 1e154): rescale those columns"
    )
