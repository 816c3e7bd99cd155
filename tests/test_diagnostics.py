"""The numbers behind the pictures of what a model learned, each against an independent reference: scikit-learn's
per-class scores, a plain loop for the calibration error, statsmodels' influence measures for the regression."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from linear_nets.diagnostics import (
    confident_mistakes,
    expected_calibration_error,
    per_class_scores,
    regression_diagnostics,
    reliability,
)


def random_predictions(seed: int, n: int = 500, k: int = 4):
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(n, k)) * 3
    P = np.exp(logits - logits.max(axis=1, keepdims=True))
    P /= P.sum(axis=1, keepdims=True)
    y = np.where(rng.random(n) < 0.6, P.argmax(axis=1), rng.integers(0, k, n))
    return P, y


@pytest.mark.parametrize("seed", range(5))
def test_per_class_scores_are_scikit_learns(seed):
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    P, y = random_predictions(seed, k=5)
    y_pred = P.argmax(axis=1)
    y_pred[y_pred == 4] = 3  # class 4 never predicted: its precision has nothing to divide (0, as zero_division=0)
    C = confusion_matrix(y, y_pred, labels=range(5))
    precision, recall, f1, support = precision_recall_fscore_support(y, y_pred, labels=range(5), zero_division=0)
    scores = per_class_scores(C, list("abcde"))
    # ratios of integers below 1000: both compute them in float64, a few roundings apart at most
    np.testing.assert_allclose([s.precision for s in scores], precision, rtol=1e-12, atol=0)
    np.testing.assert_allclose([s.recall for s in scores], recall, rtol=1e-12, atol=0)
    np.testing.assert_allclose([s.f1 for s in scores], f1, rtol=1e-12, atol=0)
    assert [s.support for s in scores] == support.tolist()


def ece_by_loop(P, y, bins):
    """Expected calibration error written out example by example, as Guo et al. define it."""
    total = 0.0
    for b in range(bins):
        low, high = b / bins, (b + 1) / bins
        members = [i for i in range(len(y)) if (low < P[i].max() <= high) or (b == 0 and P[i].max() == 0)]
        if members:
            accuracy = np.mean([P[i].argmax() == y[i] for i in members])
            confidence = np.mean([P[i].max() for i in members])
            total += len(members) / len(y) * abs(accuracy - confidence)
    return total


@pytest.mark.parametrize(("seed", "bins"), [(0, 15), (1, 10), (2, 3), (3, 1)])
def test_expected_calibration_error_is_the_binned_gap_between_accuracy_and_confidence(seed, bins):
    P, y = random_predictions(seed)
    # a sum of at most `bins` products of float64 means: agreement to 1e-12 leaves room for the summation order
    assert expected_calibration_error(torch.from_numpy(P), torch.from_numpy(y), bins) == pytest.approx(
        ece_by_loop(P, y, bins), abs=1e-12
    )
    r = reliability(P, y, bins)
    assert sum(r.counts) == len(y) and len(r.edges) == bins + 1


def test_a_perfectly_confident_and_right_model_has_no_calibration_error_and_a_confident_wrong_one_the_most():
    y = np.arange(6) % 3
    assert expected_calibration_error(np.eye(3)[y], y) == 0.0
    assert expected_calibration_error(np.eye(3)[(y + 1) % 3], y) == 1.0


def test_confident_mistakes_are_the_wrong_predictions_most_probable_first():
    P, y = random_predictions(7)
    chosen = confident_mistakes(P, y, n=20)
    wrong = [i for i in range(len(y)) if P[i].argmax() != y[i]]
    assert chosen == sorted(wrong, key=lambda i: (-P[i].max(), i))[:20]


@pytest.mark.parametrize("seed", range(3))
def test_regression_diagnostics_are_statsmodels_influence_measures(seed):
    import statsmodels.api as sm

    rng = np.random.default_rng(seed)
    n, d = 80, 3
    X = rng.normal(size=(n, d)) * [1.0, 10.0, 0.1]
    y = X @ [1.5, -0.2, 4.0] + 2.0 + rng.standard_t(3, size=n)
    ols = sm.OLS(y, sm.add_constant(X, prepend=False)).fit()
    w, b = ols.params[:d], ols.params[d]
    ours = regression_diagnostics(X, y, w, b)
    influence = ols.get_influence()
    # Householder QR against statsmodels' pinv: both backward stable on this well-conditioned design (condition number
    # about 100), so they agree to ~1e-13 relative; 1e-9 leaves a wide margin for other BLAS and instruction sets
    np.testing.assert_allclose(ours.leverage, influence.hat_matrix_diag, rtol=1e-9)
    np.testing.assert_allclose(ours.studentized, influence.resid_studentized_internal, rtol=1e-9)
    np.testing.assert_allclose(ours.cooks_distance, influence.cooks_distance[0], rtol=1e-9)
    np.testing.assert_allclose(ours.residuals, ols.resid, rtol=1e-9, atol=1e-9)
    assert ours.residual_std == pytest.approx(np.sqrt(ols.scale), rel=1e-9)
    assert ours.leverage.sum() == pytest.approx(d + 1, rel=1e-12)  # trace of the hat matrix
    assert np.all(np.diff(ours.qq_sample) >= 0) and ours.qq_theoretical[0] == pytest.approx(-ours.qq_theoretical[-1])


def test_regression_diagnostics_without_more_rows_than_coefficients_have_no_residual_variance():
    d = regression_diagnostics(np.arange(6.0).reshape(3, 2), np.ones(3), [1.0, 1.0], 0.0)
    assert np.isnan(d.residual_std) and np.isnan(d.studentized).all()
    np.testing.assert_allclose(d.residuals, 1 - (np.arange(0.0, 6, 2) + np.arange(1.0, 6, 2)))
