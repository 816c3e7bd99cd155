"""What `linear-nets evaluate` and `report` show of a trained classifier: scores per class, calibration, pictures."""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
from torch import Tensor

from linear_nets.diagnostics import ClassScores, Reliability, confident_mistakes, per_class_scores, reliability
from linear_nets.models import SoftmaxModel
from linear_nets.pipeline.saved import Scores, score_classifier

MISTAKES_SHOWN = 18
"""Most confident mistakes drawn in mistakes.png (three rows of six)."""


@dataclasses.dataclass
class ClassifierEvaluation:
    """A classifier's scores on labelled data (each example's probabilities and class), per class and calibrated."""

    scores: Scores
    classes: list[str]
    per_class: list[ClassScores]
    reliability: Reliability

    def record(self) -> dict[str, Any]:
        """What evaluation.json gets besides loss, accuracy and confusion: per-class scores and calibration."""
        per_class = {s.name: {"precision": round(s.precision, 6), "recall": round(s.recall, 6), "f1": round(s.f1, 6),
                              "support": s.support} for s in self.per_class}  # fmt: skip
        bins = self.reliability
        calibration = {"edges": bins.edges, "counts": bins.counts, "confidence": [round(c, 6) for c in bins.confidence],
                       "accuracy": [round(a, 6) for a in bins.accuracy]}  # fmt: skip
        return {"per_class": per_class, "expected_calibration_error": round(bins.ece, 6), "calibration": calibration}

    def mistakes(self, n: int = MISTAKES_SHOWN) -> list[int]:
        """Indices of the `n` most confident wrong predictions."""
        return confident_mistakes(self.scores.probabilities, self.scores.labels, n)


def format_per_class(evaluation: ClassifierEvaluation) -> str:
    """The per-class scores as a text table (recall is the class's accuracy), and the calibration error."""
    width = max(5, *(len(s.name) for s in evaluation.per_class))
    lines = [f"{'class':<{width}}  precision  recall      F1  support"]
    lines += [f"{s.name:<{width}}  {s.precision:9.4f}  {s.recall:6.4f}  {s.f1:6.4f}  {s.support:7d}"
              for s in evaluation.per_class]  # fmt: skip
    bins = len(evaluation.reliability.counts)
    lines.append(f"expected calibration error ({bins} bins): {evaluation.reliability.ece:.4f}")
    return "\n".join(lines)


def evaluate_classifier(model: SoftmaxModel, batches: Any, classes: list[str]) -> ClassifierEvaluation:
    """`model`'s scores over `(X, y)` batches: `score_classifier`'s, per class and calibrated."""
    scores = score_classifier(model, batches, len(classes))
    calibration = reliability(scores.probabilities, scores.labels)
    return ClassifierEvaluation(scores, classes, per_class_scores(scores.confusion, classes), calibration)


def weights_figure(model: SoftmaxModel, classes: list[str], image_side: int | None,
                   feature_names: list[str] | None = None) -> Any:  # fmt: skip
    """Each class's weights as a picture (`image_side` x `image_side` images), or a class x feature heat map."""
    from linear_nets.plotting import plot_class_weights

    W = model.state_tensors()["W"].detach().cpu()
    shape = (image_side, image_side) if image_side is not None else None
    return plot_class_weights(W, classes, image_shape=shape, feature_names=feature_names)


def mistakes_figure(evaluation: ClassifierEvaluation, images: Tensor, n: int = MISTAKES_SHOWN) -> Any:
    """The `n` most confident mistakes: `images` are the evaluated examples in order (uint8 or float in [0, 1])."""
    from linear_nets.plotting import show_mistakes

    chosen = evaluation.mistakes(n)
    P, y, classes = evaluation.scores.probabilities, evaluation.scores.labels, evaluation.classes
    shown = images[chosen]
    shown = shown.float() / 255 if shown.dtype == torch.uint8 else shown
    true = [classes[int(y[i])] for i in chosen]
    predicted = [classes[int(P[i].argmax())] for i in chosen]
    return show_mistakes(shown, true, predicted, [float(P[i].max()) for i in chosen])


def evaluation_figures(evaluation: ClassifierEvaluation, model: SoftmaxModel, *, images: Tensor | None = None,
                       image_side: int | None = None) -> dict[str, Any]:
    """The pictures `evaluate` saves, by file stem: weights, mistakes (images only), per_class, reliability."""
    from linear_nets.plotting import plot_per_class, plot_reliability

    figures = {"weights": weights_figure(model, evaluation.classes, image_side)}
    if images is not None:
        figures["mistakes"] = mistakes_figure(evaluation, images)
    figures["per_class"] = plot_per_class(evaluation.per_class)
    figures["reliability"] = plot_reliability(evaluation.reliability)
    return figures
