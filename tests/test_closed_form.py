"""Least squares to the last digit: vs scikit-learn, NIST's certified and exact rational answers, statsmodels'
OLS summary (every statistic, every covariance), chunks and processes against one pass, rank deficiency, bad data."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import statsmodels.api as sm
import torch
from sklearn.linear_model import LinearRegression
from strd import certified, design, exact_least_squares, load_strd, min_lre

from linear_nets.checks import check_design, check_design_end
from linear_nets.closed_form import (
    Factor,
    RankDeficientWarning,
    design_chunk,
    fit_least_squares,
    least_squares,
    least_squares_streaming,
    ols,
)
from linear_nets.data.synthetic import synthetic_data
from linear_nets.errors import DataError
from linear_nets.pipeline.config import LinregConfig
from linear_nets.pipeline.fit import fit_linreg
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
def test_nan_or_inf_are_refused_by_the_fit_or_by_the_chunk_of_a_stream(bad):
    """The formula trusts its rows; the fit checks the whole tensors once, a stream each chunk (`checks`)."""
    X, y = random_problem(7, 20, 2)
    X_bad, y_bad = X.clone(), y.clone()
    X_bad[3, 1], y_bad[5] = bad, bad
    with pytest.raises(DataError, match="features contain NaN or inf"):
        fit_linreg(LinregConfig(solver="closed-form"), (X_bad, y))
    with pytest.raises(DataError, match="labels contain NaN or inf"):
        fit_linreg(LinregConfig(solver="closed-form"), (X, y_bad))
    with pytest.raises(DataError, match="X contains NaN or inf"):
        check_design(design_chunk(X_bad, y), ["x1", "x2"])
    with pytest.raises(DataError, match="y contains NaN or inf"):
        check_design(design_chunk(X, y_bad, fit_intercept=False), ["x1", "x2"])


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




@pytest.mark.parametrize("solver", ["closed-form", "normal-equations"])
def test_huge_or_tiny_columns_are_refused_by_name_before_the_fit(solver):
    X, y = random_problem(11, 20, 2)
    config = LinregConfig(solver=solver)
    with pytest.raises(DataError, match=r"column 'x2' holds values of about \de\+30\d: .* rescale it"):
        fit_linreg(config, (torch.cat([X[:, :1], X[:, 1:] * 1e300], 1), y))
    with pytest.raises(DataError, match=r"the target holds values of about \de\+2\d\d"):
        fit_linreg(config, (X, y * 1e280))
    with pytest.raises(DataError, match=r"column 'x1' holds values of about \de-2\d\d"):
        fit_linreg(config, (torch.cat([X[:, :1] * 1e-290, X[:, 1:]], 1), y))
    # a stream: too large in any one chunk; too small only when every chunk (of every process) is
    Zt = design_chunk(X, y)
    largest = check_design(Zt[:, 10:], ["x1", "x2"], check_design(Zt[:, :10], ["x1", "x2"]))
    torch.testing.assert_close(largest, torch.linalg.vector_norm(torch.from_numpy(Zt), float("inf"), dim=1))
    tiny = Zt.copy()
    tiny[0] *= 1e-290
    check_design_end(check_design(tiny[:, :10], ["x1", "x2"]), ["x1", "x2"], gather=lambda s: [s, largest])
    with pytest.raises(DataError, match=r"column 'x1' holds values of about \de-2\d\d"):
        check_design_end(check_design(tiny[:, :10], ["x1", "x2"]), ["x1", "x2"], gather=lambda s: [s, None])
    with pytest.raises(DataError, match=r"no rows of t\.csv are left"):
        check_design_end(None, ["x1", "x2"], "no rows of t.csv are left", gather=lambda s: [s, None])


# --- NIST's reference sets -----------------------------------------------------------------------------------------

STRD = load_strd()


def _fit(entry: dict, chunk: int | None = None, method: str = "qr"):
    X, y = design(entry)
    Zt = design_chunk(X, y, entry["intercept"])
    parts = [Zt] if chunk is None else [np.ascontiguousarray(Zt[:, i : i + chunk]) for i in range(0, len(y), chunk)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RankDeficientWarning)
        return fit_least_squares(lambda: parts, [f"x{j}" for j in range(X.shape[1])], fit_intercept=entry["intercept"],
                                 method=method)  # fmt: skip


@pytest.fixture(scope="module")
def exact_answers() -> dict[str, dict]:
    return {name: exact_least_squares(*design(entry), entry["intercept"]) for name, entry in STRD.items()}


def test_the_reference_data_reproduce_nists_certified_values(exact_answers):
    """The data file holds what NIST published: the exact solution of each table agrees with the certified values
    to 13 digits or more (Filip to 7: its table of x¹⁰ rounded to doubles is a perturbed problem, as NIST notes)."""
    for name, entry in STRD.items():
        floor = 7 if name == "Filip" else 13
        assert min_lre(exact_answers[name]["coefficients"], certified(entry)["coefficients"]) >= floor, name


@pytest.mark.parametrize("chunk", [None, 4], ids=["in-memory", "4-row-chunks"])
def test_nist_sets_at_least_as_many_digits_as_statsmodels_and_12_on_average(exact_answers, chunk):
    """Correct digits against the exact answer of each table. The floor is statsmodels' QR fit on the same machine
    (the most accurate of the anchors NIST's sets are usually run through; numpy's lstsq and statsmodels' pinv lose
    more) less half a digit, and 12 digits on average over the 11 sets, for coefficients and standard errors."""
    coefficient_digits, error_digits = [], []
    for name, entry in STRD.items():
        exact = exact_answers[name]
        result = _fit(entry, chunk)
        ours = min_lre(result.params, exact["coefficients"]), min_lre(result.bse, exact["standard_errors"])
        X, y = design(entry)
        A = np.column_stack([X, np.ones(len(y))]) if entry["intercept"] else X
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            anchor = sm.OLS(y, A).fit(method="qr")
        theirs = min_lre(anchor.params, exact["coefficients"]), min_lre(anchor.bse, exact["standard_errors"])
        assert ours[0] >= theirs[0] - 0.5 and ours[1] >= theirs[1] - 0.5, (name, ours, theirs)
        coefficient_digits.append(ours[0])
        error_digits.append(ours[1])
    assert np.mean(coefficient_digits) >= 12 and np.mean(error_digits) >= 12, (coefficient_digits, error_digits)


def test_the_normal_equations_lose_the_digits_qr_keeps(exact_answers):
    """The book's (AᵀA)⁻¹Aᵀy squares the condition number: on Longley (κ of the scaled design 4e4) it keeps about
    7 digits where QR keeps 14 or more; on Filip AᵀA is not even positive definite in float64."""
    exact = exact_answers["Longley"]["coefficients"]
    normal = min_lre(_fit(STRD["Longley"], method="normal-equations").params, exact)
    assert min_lre(_fit(STRD["Longley"]).params, exact) >= normal + 4
    with pytest.raises(DataError, match="normal equations have no unique answer"):
        _fit(STRD["Filip"], method="normal-equations")


# --- statsmodels' OLS summary --------------------------------------------------------------------------------------


def heteroscedastic_problem(seed: int, n: int = 120, d: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """Off-centre, badly scaled features and noise whose spread grows with the first feature."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)) * rng.uniform(0.1, 10, d) + rng.normal(0, 5, d)
    return X, X @ rng.standard_normal(d) + 3 + rng.standard_normal(n) * (1 + np.abs(X[:, 0]))


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("cov_type", ["nonrobust", "HC0", "HC1", "HC2", "HC3"])
def test_every_statistic_equals_statsmodels(seed, fit_intercept, cov_type):
    """Every number of the summary against statsmodels' `OLS(y, A).fit(cov_type=...)` on random heteroscedastic
    data. Tolerance 1e-8 relative: both compute in float64 from factorisations of a design with κ below 1e3, so
    they differ by about κ·ε ≈ 1e-13; 1e-8 is the agreement the summary promises."""
    X, y = heteroscedastic_problem(seed)
    ours = ols(X, y, fit_intercept=fit_intercept, cov_type=cov_type, alpha=0.1)
    A = np.column_stack([X, np.ones(len(y))]) if fit_intercept else X
    theirs = sm.OLS(y, A).fit(cov_type=cov_type)
    close = {"rtol": 1e-8, "atol": 0}
    for mine, reference in [
        (ours.params, theirs.params), (ours.bse, theirs.bse), (ours.tvalues, theirs.tvalues),
        (ours.pvalues, theirs.pvalues), (ours.conf_int(), theirs.conf_int(alpha=0.1)),
        (ours.cov_params, theirs.cov_params()), (ours.resid_std, np.sqrt(theirs.scale)),
        (ours.rsquared, theirs.rsquared), (ours.rsquared_adj, theirs.rsquared_adj), (ours.fvalue, theirs.fvalue),
        (ours.f_pvalue, theirs.f_pvalue), (ours.llf, theirs.llf), (ours.aic, theirs.aic), (ours.bic, theirs.bic),
        (ours.condition_number, theirs.condition_number),
    ]:  # fmt: skip
        np.testing.assert_allclose(mine, reference, **close)
    assert (ours.df_model, ours.df_resid, ours.nobs) == (theirs.df_model, theirs.df_resid, theirs.nobs)
    assert ours.use_t == (cov_type == "nonrobust")


def test_summary_json_has_every_key_by_name_and_no_nan():
    X, y = heteroscedastic_problem(4, d=2)
    summary = ols(X, y, ["area", "rooms"], cov_type="HC3").to_json()
    for key in ("coefficients", "intercept", "standard_errors", "t_values", "p_values", "conf_int", "conf_level",
                "residual_std", "train_r2", "adj_r2", "f_statistic", "f_pvalue", "log_likelihood", "aic", "bic",
                "df_model", "df_resid", "condition_number", "cov_type"):  # fmt: skip
        assert key in summary, key
    assert set(summary["coefficients"]) == {"area", "rooms"}
    assert set(summary["standard_errors"]) == set(summary["conf_int"]) == {"area", "rooms", "intercept"}
    assert summary["cov_type"] == "HC3" and summary["conf_level"] == 0.95
    assert "NaN" not in json.dumps(summary, allow_nan=True)


def test_undefined_statistics_are_null_with_a_line_saying_why():
    X, y = heteroscedastic_problem(5, n=3, d=2)  # 3 rows, 3 coefficients: an exact fit, no residual dof
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RankDeficientWarning)
        result = ols(X, y)
    summary = result.to_json()
    assert summary["standard_errors"] == {"x1": None, "x2": None, "intercept": None}
    assert summary["residual_std"] is None and summary["f_statistic"] is None
    assert any("no residual degrees of freedom" in line for line in summary["warnings"])
    assert "Note: 3 rows for rank 3" in result.summary()


def test_two_processes_fold_to_the_answer_of_one():
    """TSQR under torchrun: each process folds its rows, the factors are stacked and factored once more. The
    combined factor is another QR of the same matrix, so the answer agrees to rounding (κ·ε, κ < 1e3 here)."""
    X, y = heteroscedastic_problem(6, n=301)
    Zt = design_chunk(X, y)
    shares = [Zt[:, :150].copy(), Zt[:, 150:].copy()]
    factors = []
    for share in shares:  # what each of the two processes folds
        factor = Factor()
        factor.add(share)
        factors.append(factor)

    def gather(value):  # World.gather on rank 0 (which folds shares[0]): every process's factor, in rank order
        return [value, factors[1]] if isinstance(value, Factor) else [value]

    assert Factor.combine(factors).y.n == 301

    one = fit_least_squares(lambda: [Zt], ["a", "b", "c", "d"], refine_with_second_pass=False)
    merged = fit_least_squares(lambda: [shares[0]], ["a", "b", "c", "d"], gather=gather,
                               refine_with_second_pass=False)  # fmt: skip
    np.testing.assert_allclose(merged.params, one.params, rtol=1e-11)
    np.testing.assert_allclose(merged.bse, one.bse, rtol=1e-11)


def test_leverage_one_with_hc3_is_one_line():
    X, y = heteroscedastic_problem(7, n=30, d=2)
    X = np.column_stack([X, np.eye(30)[4]])  # a feature nonzero on row 5 only: that row is fitted exactly
    with pytest.raises(DataError, match=r"training row 5 has leverage 1 .*HC3 divides by 1 − h"):
        ols(X, y, cov_type="HC3")
    assert np.isfinite(ols(X, y, cov_type="HC1").bse).all()


def test_dependent_columns_are_named():
    X, y = heteroscedastic_problem(8, n=40, d=2)
    constant = np.column_stack([X, np.full(40, 7.0)])
    with pytest.warns(RankDeficientWarning, match=r"rank 3 < 4 columns: 'x3' is a linear combination"):
        result = ols(constant, y)
    assert result.df_resid == 40 - 3 and result.df_model == 2
    collinear = np.column_stack([X, 2 * X[:, 0] - X[:, 1]])
    with pytest.warns(RankDeficientWarning, match="'x3' is a linear combination"):
        ols(collinear, y)
