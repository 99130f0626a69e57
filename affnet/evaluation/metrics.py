"""Evaluation metrics of the papers: CCC, MSE, Pearson; F1, accuracy, confusion, UAR.

Numpy functions evaluate a whole set at once, as the authors' code does (dkollias/OMG_Challenge and
Aff-Wild-models compute the CCC once over the whole evaluated set); `affnet.evaluation.streaming`
holds the Keras metrics that give the same VA numbers batch by batch.

Valence-arousal ([AW2] eq. 1, [AW] Sec. 5, [FBN] Sec. IV):
  ``rho_c = 2 s_xy / (s_x^2 + s_y^2 + (mean_x - mean_y)^2)`` with population (biased)
  moments; MSE; Pearson CC.
Expressions ([FBN] Sec. IV, Table IV): F1 per class and macro F1, total accuracy, mean
  diagonal of the row-normalised confusion matrix (= UAR),
  ``E_total = 0.67 F1 + 0.33 Acc``.
Action units ([FBN] Table IV): per-AU binary F1 and accuracy, their means,
  ``E_total = 0.5 F1 + 0.5 Acc``.

Unlabelled entries are NaN for VA and -1 for expressions and AUs (the schema's
convention, ``data_pipeline/records/schema.py``); they are ignored everywhere. No function
returns NaN; each documents what it returns where a value is undefined.
"""

from __future__ import annotations

import numpy as np

from data_pipeline.records.schema import EXPRESSIONS

__all__ = [
    "ccc",
    "mse",
    "pcc",
    "va_scores",
    "confusion_matrix",
    "f1_per_class",
    "f1_macro",
    "accuracy",
    "mean_confusion_diagonal",
    "uar",
    "expression_total",
    "au_scores",
    "au_total",
]

UNLABELLED = -1
DEFAULT_VA_NAMES = ("valence", "arousal")
EXPRESSION_F1_WEIGHT = 0.67  # [FBN] Table IV caption: E_total = 0.67 F1 + 0.33 Acc
AU_F1_WEIGHT = 0.5  # [FBN] Table IV caption: E_total = 0.5 F1 + 0.5 Acc


# --------------------------------------------------------------------- regression


def _paired_series(y_true, y_pred):
    x = np.asarray(y_true, dtype=np.float64)
    y = np.asarray(y_pred, dtype=np.float64)
    if x.ndim != 1 or y.ndim != 1:
        raise ValueError(
            f"expected 1-D series; received shapes {x.shape} and {y.shape}."
        )
    if x.shape != y.shape:
        raise ValueError(f"series lengths differ: {x.shape[0]} vs {y.shape[0]}.")
    if x.size == 0:
        raise ValueError("received empty series; a CCC needs at least one value.")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise ValueError(
            "series contain NaN or inf; drop unlabelled frames first (va_scores does)."
        )
    return x, y


def _moments(x, y):
    mean_x, mean_y = x.mean(), y.mean()
    dx, dy = x - mean_x, y - mean_y
    return mean_x, mean_y, np.mean(dx * dx), np.mean(dy * dy), np.mean(dx * dy)


def ccc(y_true, y_pred) -> float:
    """Concordance correlation coefficient of two 1-D series, [AW2] eq. 1.

    Population (biased) moments, as numpy and the TF1 ``tf.nn.moments`` code use.
    The denominator ``s_x^2 + s_y^2 + (mean_x - mean_y)^2`` is 0 only when both series
    are the same constant: then the CCC is 1 (perfect agreement). A constant series
    against any other gives exactly 0 (no covariance), never NaN.

    Raises:
      ValueError: on non-1-D, mismatched, empty or non-finite input.
    """
    x, y = _paired_series(y_true, y_pred)
    # Decide constancy exactly: a rounded mean leaves ~1e-34 "variances" whose ratios
    # are noise.
    x_const, y_const = np.ptp(x) == 0, np.ptp(y) == 0
    if x_const and y_const:
        return 1.0 if x[0] == y[0] else 0.0
    if x_const or y_const:
        return 0.0
    mean_x, mean_y, var_x, var_y, cov = _moments(x, y)
    return float(2.0 * cov / (var_x + var_y + (mean_x - mean_y) ** 2))


def mse(y_true, y_pred) -> float:
    """Mean squared error of two 1-D series ([AW] Table 10)."""
    x, y = _paired_series(y_true, y_pred)
    return float(np.mean((x - y) ** 2))


def pcc(y_true, y_pred) -> float:
    """Pearson correlation coefficient of two 1-D series ([AW] Table 12).

    Undefined when either series is constant; returns 0 there, the value :func:`ccc`
    gives for no co-variation (also for two identical constants, unlike :func:`ccc`:
    correlation, not agreement, is measured).
    """
    x, y = _paired_series(y_true, y_pred)
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        return 0.0
    _, _, var_x, var_y, cov = _moments(x, y)
    return float(np.clip(cov / np.sqrt(var_x * var_y), -1.0, 1.0))


def va_scores(y_true, y_pred, mask=None, dim_names=DEFAULT_VA_NAMES) -> dict:
    """CCC, MSE and Pearson CC per dimension and their means, over a whole set.

    Args:
      y_true: (N, D) labels (D = len(dim_names)); NaN marks an unlabelled value and
        drops it from that dimension only.
      y_pred: (N, D) predictions (must be finite where labelled).
      mask: optional (N,) 0/1 selection of frames, applied to every dimension.
      dim_names: names of the D columns, default ("valence", "arousal").

    Returns:
      ``{"ccc_valence", "ccc_arousal", "ccc_mean", "mse_...", "pcc_...", "n_valence",
      ...}`` with Python floats (``n_*`` ints: frames used per dimension).

    Raises:
      ValueError: on shape mismatch, or a dimension without any labelled frame.
    """
    y_true = np.asarray(y_true, dtype=np.float64)
    y_pred = np.asarray(y_pred, dtype=np.float64)
    dim_names = tuple(dim_names)
    expected = (y_true.shape[0] if y_true.ndim else 0, len(dim_names))
    if y_true.ndim != 2 or y_true.shape != y_pred.shape or y_true.shape[1] != len(dim_names):
        raise ValueError(
            f"y_true and y_pred must both be (N, {len(dim_names)}) for dims {dim_names}; "
            f"received {y_true.shape} and {y_pred.shape} (expected {expected})."
        )
    keep = np.ones(y_true.shape[0], dtype=bool)
    if mask is not None:
        mask = np.asarray(mask)
        if mask.shape != keep.shape:
            raise ValueError(f"mask must have shape {keep.shape}; received {mask.shape}.")
        keep = mask.astype(bool)
    scores = {}
    for kind, fn in (("ccc", ccc), ("mse", mse), ("pcc", pcc)):
        for d, name in enumerate(dim_names):
            rows = keep & np.isfinite(y_true[:, d])
            if not rows.any():
                raise ValueError(f"dimension {name!r} has no labelled frame to score.")
            scores[f"{kind}_{name}"] = fn(y_true[rows, d], y_pred[rows, d])
            scores[f"n_{name}"] = int(rows.sum())
        scores[f"{kind}_mean"] = float(np.mean([scores[f"{kind}_{n}"] for n in dim_names]))
    return scores


# ------------------------------------------------------------------- categorical


def _class_decisions(labels, predictions, num_classes):
    """Labelled (labels, predicted classes) pairs and the class count.

    ``predictions`` are class indices (N,) or scores/logits/probabilities (N, C), in
    which case the arg-max is the decision and C the class count.
    """
    labels = np.asarray(labels)
    predictions = np.asarray(predictions)
    if labels.ndim != 1:
        raise ValueError(f"labels must be (N,) class indices; received shape {labels.shape}.")
    if predictions.ndim == 2:
        if num_classes is not None and predictions.shape[1] != num_classes:
            raise ValueError(
                f"predictions have {predictions.shape[1]} classes but "
                f"num_classes={num_classes}."
            )
        num_classes = predictions.shape[1]
        predictions = np.argmax(predictions, axis=1)
    elif predictions.ndim != 1:
        raise ValueError(
            f"predictions must be (N,) classes or (N, C) scores; received shape "
            f"{predictions.shape}."
        )
    if num_classes is None:
        num_classes = len(EXPRESSIONS)  # the 7 basic expressions [FBN]
    if predictions.shape[0] != labels.shape[0]:
        raise ValueError(
            f"labels and predictions differ in length: {labels.shape[0]} vs "
            f"{predictions.shape[0]}."
        )
    labels = labels.astype(np.int64)
    predictions = predictions.astype(np.int64)
    labelled = labels != UNLABELLED
    labels, predictions = labels[labelled], predictions[labelled]
    if labels.size == 0:
        raise ValueError("no labelled entry (all labels are -1); nothing to score.")
    for what, values in (("labels", labels), ("predictions", predictions)):
        bad = values[(values < 0) | (values >= num_classes)]
        if bad.size:
            raise ValueError(
                f"{what} must lie in [0, {num_classes}) or be -1 (unlabelled); "
                f"received {bad[0]}."
            )
    return labels, predictions, num_classes


def confusion_matrix(labels, predictions, num_classes=None) -> np.ndarray:
    """(C, C) counts, rows = true class, columns = predicted class; -1 labels ignored.

    ``predictions``: (N,) classes or (N, C) logits/probabilities. ``num_classes``
    defaults to C of 2-D predictions, else to the 7 expressions of the schema.
    """
    labels, predictions, num_classes = _class_decisions(labels, predictions, num_classes)
    counts = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(counts, (labels, predictions), 1)
    return counts


def _f1_from_counts(tp, fp, fn, zero_division):
    denom = 2 * tp + fp + fn
    safe = np.where(denom > 0, denom, 1)
    return np.where(denom > 0, 2 * tp / safe, zero_division).astype(np.float64)


def f1_per_class(labels, predictions, num_classes=None, zero_division=0.0) -> np.ndarray:
    """(C,) one-vs-rest F1 = 2TP / (2TP + FP + FN) per class.

    A class that is neither present nor predicted has an undefined F1; it gets
    ``zero_division`` (0, as scikit-learn's ``f1_score(..., zero_division=0)``).
    """
    counts = confusion_matrix(labels, predictions, num_classes)
    tp = np.diag(counts)
    return _f1_from_counts(tp, counts.sum(0) - tp, counts.sum(1) - tp, zero_division)


def f1_macro(labels, predictions, num_classes=None, zero_division=0.0) -> float:
    """Unweighted mean of :func:`f1_per_class` over all C classes ([FBN] "F1 Score").

    Every class counts, including absent ones (scored ``zero_division``): this equals
    ``sklearn.metrics.f1_score(labels, preds, labels=range(C), average="macro",
    zero_division=0)``.
    """
    return float(np.mean(f1_per_class(labels, predictions, num_classes, zero_division)))


def accuracy(labels, predictions, num_classes=None) -> float:
    """Total accuracy over the labelled entries ([FBN] "T Acc")."""
    labels, predictions, _ = _class_decisions(labels, predictions, num_classes)
    return float(np.mean(labels == predictions))


def mean_confusion_diagonal(labels, predictions, num_classes=None) -> float:
    """Mean diagonal of the row-normalised confusion matrix ([FBN] Table IV, RAF-DB).

    The row-normalised diagonal is each class's recall, so this equals the unweighted
    average recall (:func:`uar`). Classes without any true sample have no row to
    normalise and are left out of the mean, as ``sklearn.metrics.balanced_accuracy_score``
    does.
    """
    counts = confusion_matrix(labels, predictions, num_classes)
    support = counts.sum(axis=1)
    present = support > 0
    return float(np.mean(np.diag(counts)[present] / support[present]))


def uar(labels, predictions, num_classes=None) -> float:
    """Unweighted average recall: the same number as :func:`mean_confusion_diagonal`."""
    return mean_confusion_diagonal(labels, predictions, num_classes)


def expression_total(labels, predictions, num_classes=None) -> float:
    """``E_total = 0.67 F1 + 0.33 Acc`` for expressions, [FBN] Table IV caption.

    F1 is :func:`f1_macro` over all classes, Acc is :func:`accuracy`.
    """
    return float(
        EXPRESSION_F1_WEIGHT * f1_macro(labels, predictions, num_classes)
        + (1.0 - EXPRESSION_F1_WEIGHT) * accuracy(labels, predictions, num_classes)
    )


def au_scores(labels, predictions, threshold=0.0, zero_division=0.0) -> dict:
    """Multi-label AU detection scores, [FBN] Sec. IV / Table IV.

    Args:
      labels: (N, K) with 1 (active), 0 (inactive) or -1 (unlabelled, ignored).
      predictions: (N, K) logits, probabilities or 0/1 decisions; an AU is predicted
        active where ``predictions > threshold``.
      threshold: 0.0 for logits (sigmoid > 0.5) and 0/1 decisions; pass 0.5 for
        probabilities.
      zero_division: F1 of an AU with no positive label and no positive prediction.

    Returns:
      ``{"f1": (K,), "accuracy": (K,), "count": (K,), "f1_mean", "accuracy_mean",
      "total"}``. Means run over the AUs with at least one labelled entry (an AU never
      annotated in the set has no evidence; its per-AU values are 0 with count 0).
      ``accuracy_mean`` is the mean of per-AU accuracies; it equals the pooled accuracy
      over all entries when every AU is annotated on the same frames.
      ``total = 0.5 f1_mean + 0.5 accuracy_mean``.

    Raises:
      ValueError: on shape mismatch, labels outside {-1, 0, 1}, or no labelled entry.
    """
    labels = np.asarray(labels)
    predictions = np.asarray(predictions, dtype=np.float64)
    if labels.ndim != 2 or labels.shape != predictions.shape:
        raise ValueError(
            f"labels and predictions must both be (N, K); received {labels.shape} and "
            f"{predictions.shape}."
        )
    bad = labels[~np.isin(labels, (UNLABELLED, 0, 1))]
    if bad.size:
        raise ValueError(f"AU labels must be 1, 0 or -1 (unlabelled); received {bad[0]}.")
    labelled = labels != UNLABELLED
    if not labelled.any():
        raise ValueError("no labelled AU entry (all labels are -1); nothing to score.")
    truth = labels == 1
    decided = predictions > threshold
    tp = np.sum(labelled & truth & decided, axis=0)
    fp = np.sum(labelled & ~truth & decided, axis=0)
    fn = np.sum(labelled & truth & ~decided, axis=0)
    count = labelled.sum(axis=0)
    correct = np.sum(labelled & (truth == decided), axis=0)
    f1 = _f1_from_counts(tp, fp, fn, zero_division)
    f1 = np.where(count > 0, f1, 0.0)
    acc = correct / np.maximum(count, 1)
    scored = count > 0
    f1_mean = float(np.mean(f1[scored]))
    accuracy_mean = float(np.mean(acc[scored]))
    return {
        "f1": f1,
        "accuracy": acc.astype(np.float64),
        "count": count,
        "f1_mean": f1_mean,
        "accuracy_mean": accuracy_mean,
        "total": AU_F1_WEIGHT * f1_mean + (1.0 - AU_F1_WEIGHT) * accuracy_mean,
    }


def au_total(labels, predictions, threshold=0.0) -> float:
    """``E_total = 0.5 F1 + 0.5 Acc`` for AUs, [FBN] Table IV caption."""
    return au_scores(labels, predictions, threshold)["total"]
