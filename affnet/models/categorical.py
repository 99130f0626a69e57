"""A valence-arousal network as a prior for categorical emotion recognition ([AW] Sec. 5.2).

[AW] 5.2.1: "we modified the AffWildNet's output layer to include 7 neurons
(one for each basic emotion category) and performed fine-tuning on the AFEW
5.0 dataset"; "the AffWildNet was trained to classify only video frames ...
and then video classification based on frame aggregation was performed".

`to_categorical(model)`: a `CategoricalModel` over every layer of a trained
VA model (any registry model with a `va_output` layer: `FrameCNN`, `CnnRnn`,
`CnnMultiRnn`, ...) up to the input of its `va_output`, which a new linear
`expression_output` Dense(num_classes) replaces: logits, float32, softmax in
the loss, returned as {"expression": logits} like the multi-task models'
expression output. Frame models give (B, C), sequence models (B, T, C) with
T dynamic.
The layers are shared, not copied: fine-tuning the categorical model changes
the VA model's layers too (clone the VA model first to keep it).

Saving: `CategoricalModel` is serialisable. Its config holds the VA model's
own config (rebuilt through its class on load) and `num_classes`; a `.keras`
file stores the weights of the shared layers and of `expression_output` (the
discarded `va_output` is not saved).

`aggregate_per_video` turns per-frame predictions into one class per video
(mean of per-frame probabilities, or a majority vote).
"""

import keras
import numpy as np

from data_pipeline.base import checks
from data_pipeline.records.schema import EXPRESSIONS

VA_OUTPUT = "va_output"
OUTPUT_NAME = "expression_output"
METHODS = ("mean", "vote")


@keras.saving.register_keras_serializable(package="affnet")
class CategoricalModel(keras.Model):
    """`base` up to the input of its `va_output` -> `expression_output` Dense(num_classes).

    Args:
      base: the trained VA `keras.Model` (or its serialised config, on load).
      num_classes: number of categories (7 basic expressions, [AW] 5.2).
    """

    def __init__(self, base, num_classes=len(EXPRESSIONS), **kwargs):
        if isinstance(base, dict):
            base = keras.saving.deserialize_keras_object(base)
        if not isinstance(base, keras.Model):
            raise ValueError(f"base must be a keras.Model with a {VA_OUTPUT!r} layer, got {base!r}")
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
            raise ValueError(f"num_classes must be an int >= 2, got {num_classes!r}")
        try:
            features = base.get_layer(VA_OUTPUT).input
        except ValueError:
            raise ValueError(f"model {base.name!r} has no layer {VA_OUTPUT!r} to replace") from None
        logits = keras.layers.Dense(num_classes, dtype="float32", name=OUTPUT_NAME)(features)
        # The multi-task output convention ([FBN] models): the trainer, the
        # evaluation and the export treat it as an expression-only task model.
        super().__init__(inputs=base.input, outputs={"expression": logits}, **kwargs)
        self.num_classes = num_classes
        # The config only: keeping `base` as an attribute would track its
        # discarded va_output as a weight of this model.
        self._base_config = keras.saving.serialize_keras_object(base)

    def get_config(self):
        return {"name": self.name, "trainable": self.trainable, "base": self._base_config,
                "num_classes": self.num_classes}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def to_categorical(model, num_classes=len(EXPRESSIONS), name=None):
    """`model` with its `va_output` replaced by `expression_output` ([AW] Sec. 5.2).

    Returns a `CategoricalModel` named `name` (default "<model.name>_categorical")
    sharing the layers of `model` (module docstring).
    """
    return CategoricalModel(model, num_classes, name=name or f"{model.name}_categorical")


def _softmax(logits):
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)


def aggregate_per_video(predictions, video_ids, method="mean", from_logits=False, valid=None):
    """One class per video from per-frame predictions ([AW] 5.2.1 "frame aggregation").

    Args:
      predictions: (..., C) per-frame probabilities, or logits with
        `from_logits=True`, e.g. (N, C) frames or (B, T, C) windows.
      video_ids: (...) the video of every frame (any hashable numpy values).
      method: "mean": argmax of the mean per-frame probability (logits go
        through a softmax first, so logits and probabilities agree); "vote":
        the most frequent per-frame argmax, ties broken by the higher mean
        probability, then by the lower class index.
      valid: optional (...) mask; frames where it is false (padding) are ignored.

    Returns:
      (videos, classes): the video ids in order of first appearance, and the
      int64 class of each.
    """
    checks.check_choice(method, "method", METHODS)
    scores = np.asarray(predictions, dtype=np.float64)
    ids = np.asarray(video_ids)
    if scores.ndim < 2 or ids.shape != scores.shape[:-1]:
        raise ValueError(f"predictions (..., C) and video_ids (...) must agree: got {scores.shape} and {ids.shape}")
    scores = scores.reshape(-1, scores.shape[-1])
    ids = ids.reshape(-1)
    if valid is not None:
        mask = np.asarray(valid)
        if mask.shape != tuple(np.shape(video_ids)):
            raise ValueError(f"valid must have the shape of video_ids {np.shape(video_ids)}, got {mask.shape}")
        keep = mask.reshape(-1).astype(bool)
        scores, ids = scores[keep], ids[keep]
    if from_logits:
        scores = _softmax(scores)
    videos, first, inverse = np.unique(ids, return_index=True, return_inverse=True)
    order = np.argsort(first)
    num_classes = scores.shape[-1]
    means = np.zeros((len(videos), num_classes))
    np.add.at(means, inverse, scores)
    means /= np.bincount(inverse, minlength=len(videos))[:, None]
    if method == "mean":
        classes = means.argmax(axis=-1)
    else:
        votes = np.zeros((len(videos), num_classes))
        np.add.at(votes, (inverse, scores.argmax(axis=-1)), 1.0)
        tied = votes == votes.max(axis=-1, keepdims=True)
        classes = np.where(tied, means, -np.inf).argmax(axis=-1)
    return videos[order], classes[order].astype(np.int64)
