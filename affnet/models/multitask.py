"""Multi-task networks of [FBN] Sec. VI-A: MT-VGG, MT-VGG-GRU, A/V-MT-VGG-GRU.

Output contract (shared with the losses and the training loop): every model
returns a dict of float32 tensors

  "va"          (..., 2)  linear (valence, arousal)          layer `va_output`
  "expression"  (..., 7)  logits, `EXPRESSIONS` order         layer `expression_output`
  "au"          (..., K)  logits, `au_names` order            layer `au_output`

with `...` = (B,) for frame models and (B, T) for sequence models (T dynamic).
The loss applies the softmax / sigmoid ([FBN] eq. 4-5). The paper's single
"linear output layer" giving 2 + 7 + K values is three linear Dense layers on
the same shared feature: the same function, with names that stay stable when
K changes. They compute in float32, like `heads.va_output`, so the losses see
float32 under mixed_bfloat16.

Graphs and layer names (the AffWildNet names of `heads` / `affwildnet`, so a
run of one model initialises the next by name, [FBN] Sec. VI-A "Training
implementation details"):

  `MtVgg` (frame):  `images` (B, S, S, 3) -> backbone `vggface` -> `flatten`
      -> [`landmarks_concat`] -> `fc1` -> `fc1_dropout` -> `fc2` ->
      `fc2_dropout` -> outputs.
  `MtVggGru` (sequence): `images` (B, T, S, S, 3) -> `fold_images` -> `vggface`
      -> `flatten` -> `unfold_features` -> [`landmarks_concat`] -> `fc1` ->
      `fc1_dropout` -> `rnn` (2 x TF1 GRU(128), `build_rnn_stack`) -> outputs.
      With `modality="audio"` the input is `spectrogram` (B, T, F) ->
      `fold_spectrogram` -> `spectrogram_image` -> `vggface` -> ... (the
      "MT-VGG-GRU (audio modality)" row of [FBN] Table IV).
  `AvMtVggGru` (sequence): nested streams `visual_stream` (on `images`) and
      `audio_stream` (on `spectrogram`), each an `MtVggGru` without outputs
      whose inner layer names are the single-stream model's (`vggface`, `fc1`,
      `rnn`); `av_concat` (B, T, 2 x 128) -> `fusion_rnn` (2 x GRU(128)) ->
      outputs. The streams' variables live under `visual_stream/...` and
      `audio_stream/...` so every variable path is unique (checkpoints key on
      paths).

Spectrograms. [FBN] feeds "spectrograms (extracted from the audio)" to a
stream identical to the visual one and gives no patch size. Our choice: each
frame carries a `spectrogram_shape` = (rows, cols) patch flattened to
F = rows * cols values in [-1, 1] (the pipeline's "spectrogram" feature);
`SpectrogramImage` reshapes it to (rows, cols, 1), resizes it bilinearly to
input_size x input_size and repeats it to 3 channels, so the audio stream is
literally the visual network (same shapes, same weights possible) and can be
initialised from a visual run or from ImageNet/VGGFace weights.

Dropout ([FBN] "dropout with 0.5 probability value was applied"): `dropout`
after every FC layer and between the GRU layers of every stack, as AffWildNet.
"""

import re

import keras
from keras import ops

from data_pipeline.base import checks
from affnet.layers.recurrent import RNNS, build_rnn_stack
from affnet.layers.sequence import FoldTime, UnfoldTime
from affnet.models import backbones, heads
from affnet.models.base import ArgumentModel
from affnet.models.spec import ModelSpec
from affnet.names import TASKS  # noqa: F401  (the tasks of the outputs; defined once in names)
from affnet.weights import transfer
from data_pipeline.records.schema import AUS_ABAW_12, AUS_AFFWILD2_8, AUS_FBN_17, EXPRESSIONS, LANDMARK_DIM

OUTPUT_LAYERS = {"va": "va_output", "expression": "expression_output", "au": "au_output"}
# [FBN] Sec. VI-A: 8 AUs annotated in Aff-Wild2; 12 of the later ABAW
# releases; 17 of FaceBehaviorNet (Sec. VI-B).
AU_SETS = {"8": AUS_AFFWILD2_8, "12": AUS_ABAW_12, "17": AUS_FBN_17}
MODALITIES = ("visual", "audio")
STREAMS = {"visual": "visual_stream", "audio": "audio_stream"}
DEFAULT_SPECTROGRAM_SHAPE = (16, 64)
RNN_NAME = "rnn"
FUSION_RNN_NAME = "fusion_rnn"


def resolve_au_names(au_set="8", au_names=None):
    """The AU names a model predicts: `au_names` when given, else `AU_SETS[au_set]`.

    `au_names` wins so a registry default `au_set` never blocks an explicit
    list (e.g. a dataset's own AUs).
    """
    if au_names is not None:
        names = tuple(au_names) if isinstance(au_names, (list, tuple)) else None
        if (not names or any(not isinstance(name, str) or not name for name in names)
                or len(set(names)) != len(names)):
            raise ValueError(f"au_names must be a non-empty sequence of distinct AU names, got {au_names!r}")
        return names
    key = str(au_set) if isinstance(au_set, int) and not isinstance(au_set, bool) else au_set
    if key not in AU_SETS:
        raise ValueError(f"au_set must be one of {tuple(AU_SETS)}, got {au_set!r}")
    return AU_SETS[key]


def check_spectrogram_shape(spectrogram_shape):
    """(rows, cols) of positive ints; ValueError naming the value otherwise."""
    try:
        rows, cols = spectrogram_shape
    except (TypeError, ValueError):
        rows = cols = None
    if any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in (rows, cols)):
        raise ValueError(f"spectrogram_shape must be (rows, cols) of positive ints, got {spectrogram_shape!r}")
    return rows, cols


def _check_modality(modality):
    return checks.check_choice(modality, "modality", MODALITIES)


def task_outputs(features, num_aus):
    """The three linear output layers on one shared feature ([FBN] Sec. VI-A), float32."""
    return {
        "va": heads.va_output(features),
        "expression": keras.layers.Dense(len(EXPRESSIONS), dtype="float32", name=OUTPUT_LAYERS["expression"])(
            features),
        "au": keras.layers.Dense(num_aus, dtype="float32", name=OUTPUT_LAYERS["au"])(features),
    }


@keras.saving.register_keras_serializable(package="affnet")
class SpectrogramImage(keras.layers.Layer):
    """(N, rows * cols) -> (N, size, size, 3): a frame's spectrogram patch as a
    backbone input (module docstring). Computes in float32 (bilinear
    resizing in bfloat16 would round the interpolated values)."""

    def __init__(self, rows, cols, size, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        self.rows, self.cols = check_spectrogram_shape((rows, cols))
        self.size = checks.check_int(size, "size")

    def build(self, input_shape):
        if input_shape[-1] != self.rows * self.cols:
            raise ValueError(f"SpectrogramImage {self.name!r} needs {self.rows} x {self.cols} = "
                             f"{self.rows * self.cols} values per frame, got input shape {input_shape}")

    def call(self, x):
        x = ops.reshape(x, (-1, self.rows, self.cols, 1))
        if (self.rows, self.cols) != (self.size, self.size):
            x = ops.image.resize(x, (self.size, self.size), interpolation="bilinear")
        return ops.repeat(x, 3, axis=-1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.size, self.size, 3)

    def get_config(self):
        return {**super().get_config(), "rows": self.rows, "cols": self.cols, "size": self.size}


def _check_sequence_arguments(backbone, fc_units, dropout, au_set, au_names, landmarks, freeze_backbone):
    """(drop rate, AU names) after the checks MT-VGG-GRU and A/V-MT-VGG-GRU share."""
    backbones.check_backbone(backbone)
    checks.check_int(fc_units, "fc_units")
    checks.check_bool(landmarks, "landmarks")
    checks.check_bool(freeze_backbone, "freeze_backbone")
    return checks.check_rate(dropout), resolve_au_names(au_set, au_names)


def _sequence_input(modality, input_size, spectrogram_shape):
    if modality == "visual":
        return "images", keras.Input((None, input_size, input_size, 3), name="images")
    rows, cols = spectrogram_shape
    return "spectrogram", keras.Input((None, rows * cols), name="spectrogram")


def _stream_features(source, modality, landmark_input, cnn, backbone, input_size, spectrogram_shape, fc_units,
                     dropout, rnn, rnn_layers, rnn_units):
    """(B, T, ...) images or spectrograms -> (B, T, rnn_units): the MT-VGG-GRU
    without its output layer ([FBN] Sec. VI-A.2-3)."""
    if modality == "visual":
        x = FoldTime(name="fold_images")(source)
    else:
        x = FoldTime(name="fold_spectrogram")(source)
        x = SpectrogramImage(*spectrogram_shape, input_size, name="spectrogram_image")(x)
    x = heads.backbone_features(cnn(x), backbone, pool=False)
    x = UnfoldTime(name="unfold_features")([x, source])
    x = heads.concat_landmarks(x, landmark_input)
    x = heads.fc_stack(x, (fc_units,), dropout)
    return build_rnn_stack(x, rnn=rnn, layers=rnn_layers, units=rnn_units, dropout=dropout, name=RNN_NAME)


class _MultiTaskModel(ArgumentModel):
    """`expression_names` shared by the classes below (config and `backbone`: `ArgumentModel`)."""

    expression_names = EXPRESSIONS


@keras.saving.register_keras_serializable(package="affnet")
class MtVgg(_MultiTaskModel):
    """MT-VGG ([FBN] Sec. VI-A.1): VGG-Face conv+pool -> 2 FC of 4096 -> VA,
    expression and AU outputs. Frame model: {"images": (B, S, S, 3)} -> (B, .).

    Args:
      backbone, input_size, width, input_preprocessing: of the CNN
        (`backbones.build_backbone`); [FBN] uses VGG-Face.
      fc_units: hidden FC sizes ((4096, 4096) in [FBN]).
      dropout: drop rate after every FC layer (0.5).
      au_set: "8" (Aff-Wild2 in [FBN] VI-A), "12" (ABAW) or "17"
        (FaceBehaviorNet); `au_names`, when given, replaces it.
      landmarks: concatenate the 136 landmark values with the backbone
        features before fc1 (the [AW] scenario 2; [FBN] uses none).
      freeze_backbone: make the CNN non-trainable.
    """

    def __init__(self, backbone="vggface", input_size=96, width=1.0, input_preprocessing="none",
                 fc_units=(4096, 4096), dropout=0.5, au_set="8", au_names=None, landmarks=False,
                 freeze_backbone=False, **kwargs):
        backbones.check_backbone(backbone)
        fc_units = checks.check_units(fc_units, allow_empty=False)
        dropout = checks.check_rate(dropout)
        resolved_aus = resolve_au_names(au_set, au_names)
        checks.check_bool(landmarks, "landmarks")
        checks.check_bool(freeze_backbone, "freeze_backbone")
        cnn = backbones.build_backbone(backbone, input_size, width, input_preprocessing)
        cnn.trainable = not freeze_backbone
        inputs, images, landmark_input = heads.face_inputs(input_size, landmarks, sequence=False)
        x = heads.backbone_features(cnn(images), backbone, pool=False)
        x = heads.concat_landmarks(x, landmark_input)
        x = heads.fc_stack(x, fc_units, dropout)
        super().__init__(inputs=inputs, outputs=task_outputs(x, len(resolved_aus)), **kwargs)
        self.backbone_name = backbone
        self.au_names = resolved_aus
        self._arguments = dict(backbone=backbone, input_size=input_size, width=width,
                               input_preprocessing=input_preprocessing, fc_units=list(fc_units), dropout=dropout,
                               au_set=au_set, au_names=list(resolved_aus), landmarks=landmarks,
                               freeze_backbone=freeze_backbone)


@keras.saving.register_keras_serializable(package="affnet")
class MtVggGru(_MultiTaskModel):
    """MT-VGG-GRU ([FBN] Sec. VI-A.2): the CNN and first FC of MT-VGG -> 2 x
    GRU(128) -> the MT-VGG outputs. Sequence model, T dynamic:
    {"images": (B, T, S, S, 3)} (or {"spectrogram": (B, T, rows*cols)} with
    `modality="audio"`) -> (B, T, .).

    Args: as `MtVgg`, plus
      fc_units: units of fc1 (4096).
      modality: "visual" (frames) or "audio" (spectrograms, module docstring).
      rnn, rnn_layers, rnn_units: the stack ("gru", 2 x 128 [FBN]).
      spectrogram_shape: (rows, cols) of a frame's spectrogram patch (audio).
      landmarks: visual modality only.
    """

    def __init__(self, backbone="vggface", input_size=96, width=1.0, input_preprocessing="none", fc_units=4096,
                 dropout=0.5, au_set="8", au_names=None, landmarks=False, modality="visual", rnn="gru",
                 rnn_layers=2, rnn_units=128, spectrogram_shape=DEFAULT_SPECTROGRAM_SHAPE, freeze_backbone=False,
                 **kwargs):
        dropout, resolved_aus = _check_sequence_arguments(backbone, fc_units, dropout, au_set, au_names, landmarks,
                                                          freeze_backbone)
        _check_modality(modality)
        if landmarks and modality == "audio":
            raise ValueError("landmarks=True needs modality='visual' (landmarks describe the face), "
                             f"got modality={modality!r}")
        checks.check_choice(rnn, "rnn", RNNS)
        checks.check_int(rnn_layers, "rnn_layers")
        checks.check_int(rnn_units, "rnn_units")
        spectrogram_shape = check_spectrogram_shape(spectrogram_shape)
        cnn = backbones.build_backbone(backbone, input_size, width, input_preprocessing)
        cnn.trainable = not freeze_backbone
        key, source = _sequence_input(modality, input_size, spectrogram_shape)
        inputs = {key: source}
        landmark_input = None
        if landmarks:
            landmark_input = keras.Input((None, LANDMARK_DIM), name="landmarks")
            inputs["landmarks"] = landmark_input
        x = _stream_features(source, modality, landmark_input, cnn, backbone, input_size, spectrogram_shape,
                             fc_units, dropout, rnn, rnn_layers, rnn_units)
        super().__init__(inputs=inputs, outputs=task_outputs(x, len(resolved_aus)), **kwargs)
        self.backbone_name = backbone
        self.au_names = resolved_aus
        self.modality = modality
        self._arguments = dict(backbone=backbone, input_size=input_size, width=width,
                               input_preprocessing=input_preprocessing, fc_units=fc_units, dropout=dropout,
                               au_set=au_set, au_names=list(resolved_aus), landmarks=landmarks, modality=modality,
                               rnn=rnn, rnn_layers=rnn_layers, rnn_units=rnn_units,
                               spectrogram_shape=list(spectrogram_shape), freeze_backbone=freeze_backbone)


@keras.saving.register_keras_serializable(package="affnet")
class AvMtVggGru(_MultiTaskModel):
    """A/V-MT-VGG-GRU ([FBN] Sec. VI-A.3, Fig. 3): a visual and an audio
    MT-VGG-GRU stream without outputs -> `av_concat` (2 x 128) -> 2 x GRU(128)
    -> the MT-VGG-GRU outputs. Sequence model:
    {"images": (B, T, S, S, 3), "spectrogram": (B, T, rows*cols)} -> (B, T, .).

    Args: as `MtVggGru` (applied to both streams; `landmarks` enter the
    visual stream only), plus
      fusion_rnn_layers, fusion_rnn_units: the fusion stack; None = the
        streams' `rnn_layers` / `rnn_units` ([FBN]: 2 x 128).
    `init_stream_from` loads a single-stream run into a stream ([FBN] "first
    the audio/visual streams were trained independently").
    """

    def __init__(self, backbone="vggface", input_size=96, width=1.0, input_preprocessing="none", fc_units=4096,
                 dropout=0.5, au_set="8", au_names=None, landmarks=False, rnn="gru", rnn_layers=2, rnn_units=128,
                 fusion_rnn_layers=None, fusion_rnn_units=None, spectrogram_shape=DEFAULT_SPECTROGRAM_SHAPE,
                 freeze_backbone=False, **kwargs):
        dropout, resolved_aus = _check_sequence_arguments(backbone, fc_units, dropout, au_set, au_names, landmarks,
                                                          freeze_backbone)
        checks.check_choice(rnn, "rnn", RNNS)
        checks.check_int(rnn_layers, "rnn_layers")
        checks.check_int(rnn_units, "rnn_units")
        fusion_layers = rnn_layers if fusion_rnn_layers is None else checks.check_int(fusion_rnn_layers,
                                                                                "fusion_rnn_layers")
        fusion_units = rnn_units if fusion_rnn_units is None else checks.check_int(fusion_rnn_units, "fusion_rnn_units")
        spectrogram_shape = check_spectrogram_shape(spectrogram_shape)
        inputs, features = {}, []
        for modality in MODALITIES:
            # The scope prefixes the stream's variable paths only; its layer
            # names stay those of a single-stream MtVggGru.
            with keras.name_scope(STREAMS[modality]):
                cnn = backbones.build_backbone(backbone, input_size, width, input_preprocessing)
                cnn.trainable = not freeze_backbone
                key, source = _sequence_input(modality, input_size, spectrogram_shape)
                stream_inputs = {key: source}
                landmark_input = None
                if landmarks and modality == "visual":
                    landmark_input = keras.Input((None, LANDMARK_DIM), name="landmarks")
                    stream_inputs["landmarks"] = landmark_input
                x = _stream_features(source, modality, landmark_input, cnn, backbone, input_size,
                                     spectrogram_shape, fc_units, dropout, rnn, rnn_layers, rnn_units)
                stream = keras.Model(stream_inputs, x, name=STREAMS[modality])
            outer = {name: keras.Input(tuple(tensor.shape[1:]), name=name) for name, tensor in stream_inputs.items()}
            inputs.update(outer)
            features.append(stream(outer))
        x = keras.layers.Concatenate(name="av_concat")(features)
        x = build_rnn_stack(x, rnn=rnn, layers=fusion_layers, units=fusion_units, dropout=dropout,
                            name=FUSION_RNN_NAME)
        super().__init__(inputs=inputs, outputs=task_outputs(x, len(resolved_aus)), **kwargs)
        self.backbone_name = backbone
        self.au_names = resolved_aus
        self._arguments = dict(backbone=backbone, input_size=input_size, width=width,
                               input_preprocessing=input_preprocessing, fc_units=fc_units, dropout=dropout,
                               au_set=au_set, au_names=list(resolved_aus), landmarks=landmarks, rnn=rnn,
                               rnn_layers=rnn_layers, rnn_units=rnn_units, fusion_rnn_layers=fusion_rnn_layers,
                               fusion_rnn_units=fusion_rnn_units, spectrogram_shape=list(spectrogram_shape),
                               freeze_backbone=freeze_backbone)

    @property
    def backbone(self):
        """The visual stream's backbone (`stream("audio").get_layer(...)` for the other)."""
        return self.stream("visual").get_layer(self.backbone_name)

    def stream(self, modality):
        """The nested stream model of `modality` ("visual" or "audio")."""
        return self.get_layer(STREAMS[_check_modality(modality)])


# ---------------------------------------------------------------------------
# Initialisation by layer name ([FBN] Sec. VI-A, "Training implementation details").


def _fc_names(model):
    """The hidden FC layers `fc1`, `fc2`, ... of `model` (`heads.fc_stack` names), in order."""
    return sorted((layer.name for layer in model.layers if re.fullmatch(r"fc\d+", layer.name)),
                  key=lambda name: int(name[2:]))


def init_cnn_from(model, source, stream=None):
    """Initialise the CNN part of `model` from `source` by name: the backbone
    and every `fc<k>` layer both have ([FBN] "The CNN part of the MT-VGG-GRU
    was initialized with the weights of the MT-VGG": backbone + fc1; an
    MT-VGG from a VA-trained `vggface_4096x4096x2` run, "MT-VGG was first
    pre-trained on the Aff-Wild": backbone + fc1 + fc2).

    Args:
      model: an `MtVgg` / `MtVggGru`, or an `AvMtVggGru` with `stream` set.
      source: a `keras.Model` or `.keras` file with the same backbone name and fc1.
      stream: "visual" / "audio" for an `AvMtVggGru`.
    Returns the copied layer names.
    """
    target = model.stream(stream) if stream is not None else model
    source_model, where = transfer.load_source(source, where="init weights")
    backbone = getattr(model, "backbone_name", None) or "vggface"
    source_fcs = set(_fc_names(source_model))
    names = [backbone] + [name for name in _fc_names(target) if name in source_fcs]
    if "fc1" not in names:
        raise ValueError(f"init_cnn_from: both {where} and {target.name!r} need a layer 'fc1'")
    return transfer.copy_layers(source_model, target, names, where)


def init_stream_from(model, stream, source):
    """Initialise one stream of an `AvMtVggGru` from a single-stream
    `MtVggGru` run (its backbone, fc1 and GRU stack), the [FBN] two-phase
    strategy: streams trained alone, then jointly. Returns the copied names."""
    if not isinstance(model, AvMtVggGru):
        raise ValueError(f"init_stream_from needs an AvMtVggGru, got {type(model).__name__} {model.name!r}")
    source_model, where = transfer.load_source(source, where="init weights")
    return transfer.copy_layers(source_model, model.stream(stream), [model.backbone_name, "fc1", RNN_NAME], where)


# ---------------------------------------------------------------------------
# Registered configurations.


def _spec(builder, reference, paper_ccc=None, sequence=True, **defaults):
    return ModelSpec(builder=builder, defaults=defaults, reference=reference, paper_ccc=paper_ccc,
                     sequence=sequence)


# [FBN] Sec. VI-A: VGG-Face, FC 4096, 2 x GRU(128), dropout 0.5, images only,
# the 8 Aff-Wild2 AUs.
_MT = dict(backbone="vggface", dropout=0.5, au_set="8", landmarks=False)
_GRU = dict(rnn="gru", rnn_layers=2, rnn_units=128, fc_units=4096)

# paper_ccc: [FBN] Table IV, Aff-Wild2 (valence, arousal). The reference adds
# the table's expression / AU E_total on Aff-Wild2 and the Aff-Wild CCC after
# fine-tuning.
CONFIGS = {
    "mt_vgg": _spec(MtVgg, "[FBN] Sec. VI-A.1, Table IV (Aff-Wild2 Expr 0.50, AU 0.60; Aff-Wild 0.56 / 0.35)",
                    (0.43, 0.42), sequence=False, fc_units=(4096, 4096), **_MT),
    "mt_vgg_gru": _spec(MtVggGru, "[FBN] Sec. VI-A.2, Table IV visual (Aff-Wild2 Expr 0.52, AU 0.62; "
                        "Aff-Wild 0.60 / 0.45; AFEW-VA 0.60 / 0.60)", (0.46, 0.45), modality="visual", **_GRU,
                        **_MT),
    "mt_vgg_gru_audio": _spec(MtVggGru, "[FBN] Sec. VI-A.2-3, Table IV audio (Aff-Wild2 Expr 0.51, AU 0.62; "
                              "Aff-Wild 0.54 / 0.47)", (0.44, 0.51), modality="audio",
                              spectrogram_shape=DEFAULT_SPECTROGRAM_SHAPE, **_GRU, **_MT),
    "av_mt_vgg_gru": _spec(AvMtVggGru, "[FBN] Sec. VI-A.3, Fig. 3, Table IV (Aff-Wild2 Expr 0.53, AU 0.63; "
                           "Aff-Wild 0.62 / 0.49)", (0.47, 0.52), spectrogram_shape=DEFAULT_SPECTROGRAM_SHAPE,
                           **_GRU, **_MT),
}
