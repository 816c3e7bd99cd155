"""Closed-form least squares: vs scikit-learn, streaming vs in memory, rank deficiency, bad data."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from sklearn.linear_model import LinearRegression

from linear_nets.closed_form import (
    RankDeficientWarning,
    StreamingLeastSquares,
    design_rows,
    least_squares,
    least_squares_streaming,
)
from linear_nets.data.synthetic import synthetic_data
from linear_nets.errors import DataError
from linear_nets.scratch.linear_regression import fit as fit_scratch

SHAPES = [(50, 3), (1000, 10), (200, 40), (7, 6)]


def random_problem(seed: int, n: int, d: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Badly scaled, off-centre features and targets (so the intercept matters)."""
    g = torch.Generator().manual_seed(seed)
    scale = torch.rand(d, dtype=torch.float64, generator=g) * 10
    offset = torch.randn(d, dtype=torch.float64, generator=g) * 5
    X = torch.randn(n, d, dtype=torch.float64, generator=g) * scale + offset
    y = X @ torch.randn(d, dtype=torch.float64, generator=g) + 3 + torch.randn(n, dtype=torch.float64, generator=g)
    return X, y


def sklearn_solution(X: torch.Tensor, y: torch.Tensor) -> tuple[np.ndarray, float]:
    model = LinearRegression().fit(X.numpy(), y.numpy())
    return model.coef_, float(model.intercept_)


@pytest.mark.parametrize("seed", range(2))
@pytest.mark.parametrize(("n", "d"), SHAPES)
def test_matches_scikit_learn(seed, n, d):
    X, y = random_problem(seed, n, d)
    coef, intercept = sklearn_solution(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RankDeficientWarning)  # full rank: no warning
        for w, b in (least_squares(X, y), least_squares_streaming([(X, y)])):
            assert w.dtype == torch.float64
            assert np.abs(w.numpy() - coef).max() < 1e-6
            assert abs(b.item() - intercept) < 1e-6


@pytest.mark.parametrize(("n", "d"), SHAPES)
def test_twenty_chunks_equal_one(n, d):
    X, y = random_problem(3, n, d)
    w1, b1 = least_squares_streaming([(X, y)])
    chunks = list(zip(X.tensor_split(20), y.tensor_split(20), strict=True))
    w20, b20 = least_squares_streaming(chunks)
    torch.testing.assert_close(w20, w1, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(b20, b1, rtol=1e-9, atol=1e-9)
    w, b = least_squares(X, y)
    torch.testing.assert_close(w20, w, rtol=1e-7, atol=1e-7)
    torch.testing.assert_close(b20, b, rtol=1e-7, atol=1e-7)


def test_float32_input_is_solved_in_float64():
    X, y = random_problem(4, 100, 3)
    w, _ = least_squares(X.float(), y.float())
    assert w.dtype == torch.float64


def test_agrees_with_sgd_on_the_synthetic_problem():
    true_w = torch.tensor([2.0, -3.4])
    X, y = synthetic_data(true_w, 4.2, 1000, generator=torch.Generator().manual_seed(0))
    w, b = least_squares(X, y)
    assert (w.float() - true_w).abs().max() < 0.01 and abs(b.item() - 4.2) < 0.01
    w_sgd, b_sgd, _ = fit_scratch(X, y, lr=0.03, num_epochs=3, batch_size=10)
    assert (w.float() - w_sgd).abs().max() < 0.01 and abs(b.item() - b_sgd.item()) < 0.01


def rank_deficient_problem() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(5)
    X = torch.randn(30, 3, dtype=torch.float64, generator=g)
    X = torch.cat([X, 2 * X[:, :1] - X[:, 1:2]], dim=1)  # column 4 is a combination of columns 1 and 2
    return X, torch.randn(30, dtype=torch.float64, generator=g)


def test_rank_deficient_gives_minimum_norm_solution_and_warns():
    X, y = rank_deficient_problem()
    A = np.hstack([X.numpy(), np.ones((30, 1))])
    expected = np.linalg.pinv(A) @ y.numpy()  # the minimum-norm least-squares solution
    for solve in (least_squares, lambda X, y: least_squares_streaming(zip(X.split(7), y.split(7), strict=True))):
        with pytest.warns(RankDeficientWarning, match="rank 4 < 5 columns"):
            w, b = solve(X, y)
        np.testing.assert_allclose(np.append(w.numpy(), b.item()), expected, atol=1e-8)


def test_fewer_rows_than_columns_is_rank_deficient():
    X, y = random_problem(6, 3, 5)
    with pytest.warns(RankDeficientWarning, match="rank 3 < 6"):
        w, b = least_squares(X, y)
    torch.testing.assert_close(X @ w + b, y)  # an exact fit exists


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_nan_or_inf_raise_data_error(bad):
    X, y = random_problem(7, 20, 2)
    X_bad, y_bad = X.clone(), y.clone()
    X_bad[3, 1], y_bad[5] = bad, bad
    with pytest.raises(DataError, match="X contains NaN or inf"):
        least_squares(X_bad, y)
    with pytest.raises(DataError, match="y contains NaN or inf"):
        least_squares(X, y_bad)
    with pytest.raises(DataError, match="X contains NaN or inf"):
        least_squares_streaming([(X, y), (X_bad, y)])


def test_rejected_chunk_leaves_the_accumulator_unchanged():
    X, y = random_problem(8, 40, 3)
    solver = StreamingLeastSquares()
    solver.update(X[:20], y[:20])
    bad = X[20:].clone()
    bad[0, 0] = float("nan")
    with pytest.raises(DataError):
        solver.update(bad, y[20:])
    with pytest.raises(DataError, match="earlier chunks had 3"):
        solver.update(X[20:, :2], y[20:])
    solver.update(X[20:], y[20:])
    assert solver.num_examples == 40
    w, b = solver.solve()
    w_ref, b_ref = least_squares(X, y)
    torch.testing.assert_close(w, w_ref)
    torch.testing.assert_close(b, b_ref)


def test_shape_errors_and_empty_stream():
    X, y = random_problem(9, 10, 2)
    with pytest.raises(DataError, match="y has 9 values but X has 10 rows"):
        least_squares(X, y[:9])
    with pytest.raises(DataError, match=r"X must be a matrix \[n, d\]"):
        least_squares(X[:, 0], y)
    with pytest.raises(DataError, match="no data"):
        least_squares_streaming([])


def test_badly_scaled_features_are_not_mistaken_for_rank_deficiency():
    # Features in wildly different units; cond(A) ~ 1e9, so the raw Gram matrix (cond ~ 1e18) looks singular.
    g = torch.Generator().manual_seed(10)
    X = torch.randn(500, 3, dtype=torch.float64, generator=g) * torch.tensor([1e5, 1.0, 1e-4], dtype=torch.float64)
    true_w = torch.tensor([1e-5, 2.0, 3e4], dtype=torch.float64)
    y = X @ true_w + 1 + 0.01 * torch.randn(500, dtype=torch.float64, generator=g)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RankDeficientWarning)
        w_mem, b_mem = least_squares(X, y)
        w, b = least_squares_streaming(zip(X.tensor_split(20), y.tensor_split(20), strict=True))
    torch.testing.assert_close(w, w_mem, rtol=1e-6, atol=0)
    torch.testing.assert_close(b, b_mem, rtol=1e-6, atol=0)
    torch.testing.assert_close(w, true_w, rtol=1e-2, atol=0)


def test_values_whose_squares_overflow_raise_data_error():
    X, y = random_problem(11, 20, 2)
    X[4, 0] = 1e200  # finite, but its square is not: the sums would be inf
    solver = StreamingLeastSquares()
    with pytest.raises(DataError, match="too large for float64 sums of squares"):
        solver.update(X, y)
    assert solver.sums is None and solver.num_examples == 0


def test_update_transposed_equals_update_and_checks_its_input():
    X, y = random_problem(12, 30, 3)
    by_rows, transposed = StreamingLeastSquares(), StreamingLeastSquares()
    by_rows.update(X, y)
    Z = design_rows(3, 40)[:, :30]  # a prefix of a longer buffer, as a table reader passes a short last chunk
    Z[:3], Z[4] = X.T, y
    transposed.update_transposed(Z, 3)
    assert Z.shape[0] % 4 == 0 and Z[3].eq(1).all() and Z[5:].eq(0).all()
    torch.testing.assert_close(transposed.sums, by_rows.sums, rtol=1e-12, atol=0)
    torch.testing.assert_close(
        transposed.gram,
        torch.cat([X, torch.ones(30, 1, dtype=X.dtype)], 1).T @ torch.cat([X, torch.ones(30, 1, dtype=X.dtype)], 1),
    )
    with pytest.raises(DataError, match="earlier chunks had 3"):
        transposed.update_transposed(design_rows(2, 5), 2)
    with pytest.raises(DataError, match="Z must be float64"):
        transposed.update_transposed(Z.float(), 3)
    Z[4, 7] = float("nan")
    with pytest.raises(DataError, match="y contains NaN or inf"):
        transposed.update_transposed(Z, 3)
    assert transposed.num_examples == 30
