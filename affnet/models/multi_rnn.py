"""CNN plus multi-RNN networks of [MC] Sec. 5.3 and [OMG] Sec. III-B.

`CnnMultiRnn`: inputs `{"images": (B, T, S, S, 3) in [-1, 1], "landmarks": (B, T, 136)}`
(no "landmarks" when `landmarks=False`) -> (B, T, 2) (valence, arousal); T dynamic.

Features are tapped from several layers of one CNN ([MC] Sec. 5.3, Fig. 5, 7):

  `fold_images` (B*T, S, S, 3) -> backbone (a nested multi-output model named
  after it, keras-vggface layer names) -> one tensor per tap:
    conv/pool tap `t`: `tap_<t>_<reduction>` -> `unfold_<t>` (B, T, F_t)
    "fc": `flatten` -> `unfold_features` -> `landmarks_concat` -> `fc1` (ReLU)
          -> `fc1_dropout` (the AffWildNet names of `heads`, so an AffWildNet
          run initialises them by name)
  "separate" (CNN-kRNN): tap t -> its own `build_rnn_stack(name="rnn_<t>")`
  -> `rnn_features` (concatenation); "joint" (CNN-k-to-1RNN): `taps_concat` ->
  one stack `rnn` -> `rnn_features`; then optionally `head_fc` (the "-1FC"
  variants) -> `va_output` (linear 2).

Tap names. VGG backbones: `conv1_1` .. `conv5_3` (the 1st .. 13th conv, ReLU
output) and `pool1` .. `pool5`; the TF1 scope names `conv_1` .. `conv_13` and
`pool_1` .. `pool_5` of [code] are accepted and stored as the Keras names.
Any backbone: any of its layer names, `last_pool` (its output: pool5 for VGG)
and `fc` (fc1). [MC] "2nd pooling layer (following the fourth conv)" = pool2,
"last pool" = pool5 taken before the landmark concatenation, "nth conv" =
the nth of conv1_1, conv1_2, conv2_1, ..., conv5_3 (`VGG_CONVS`).

Tap sizes at 96x96 (width 1) and the first GRU(128) layer they feed
(TF1 GRUCell: gates [F+128, 256] + 256, candidate [F+128, 128] + 128):

  tap                 map          flattened F   GRU(128) layer 1
  conv1_1, conv1_2    96x96x64     589,824       226,492,800
  pool1               48x48x64     147,456        56,672,640
  conv2_1, conv2_2    48x48x128    294,912       113,295,744
  pool2               24x24x128     73,728        28,361,088
  conv3_1..conv3_3    24x24x256    147,456        56,672,640
  pool3               12x12x256     36,864        14,205,312
  conv4_1..conv4_3    12x12x512     73,728        28,361,088
  pool4, conv5_x      6x6x512       18,432         7,127,424
  pool5               3x3x512        4,608         1,818,624 + 384
  fc                  4096           4,096         1,622,400

The paper's form (flatten, the default, "auto") puts 28.4M parameters on the
pool2 GRU alone (18,907,392 in the TF1 "gates" block, 9,453,696 in
"candidate"); `tap_reduction` offers smaller documented alternatives per tap:
"global_average" (C values), "grid_average" (average-pool to a
`tap_grid` x `tap_grid` map, then flatten: pool2 -> 3x3x128 = 1,152 at
tap_grid=3) and "conv1x1" (a learned 1x1 conv `tap_<t>_conv1x1` to
`tap_channels` channels, ReLU, then flatten: pool2 -> 24x24x16 = 9,216).
"auto" flattens VGG/CNN-M maps and globally averages ResNet-50/DenseNet-121
ones ([MC] 5.1 "averaged pooled features").

Dropout ([MC] Sec. 6.3, [OMG] Sec. IV-2): `dropout` 0.5 after fc1 ("on the
fully connected layers on top of the conv and pooling layers") and
`rnn_dropout` after the first GRU layer. [MC] writes "0.8": TF1's
`dropout(x, 0.8)` keeps 0.8, so the default drop rate is 0.2, which [OMG]
IV-2 states outright ("dropout probability equal to 0.2, between the 2 GRU
layers"). `head_fc` has no dropout (neither paper puts one there); its size
defaults to [OMG] IV-2's best 64 ([MC] gives none).

Where [MC] is silent we choose: CNN-2RNN and CNN2-to-1RNN tap (pool5, fc) as
[OMG] III-B.1's CNN-2RNN does; the [OMG] networks (cropped faces, no
landmark input in [OMG] III-C) use `landmarks=False`.
"""

import keras

from data_pipeline.base import checks
from affnet.layers.recurrent import build_rnn_stack
from affnet.layers.sequence import FoldTime, UnfoldTime
from affnet.models import backbones, heads
from affnet.models.base import ArgumentModel
from affnet.models.spec import ModelSpec

# [AW] Table 7 conv order: the paper's "nth conv" is VGG_CONVS[n - 1].
VGG_CONVS = ("conv1_1", "conv1_2", "conv2_1", "conv2_2", "conv3_1", "conv3_2", "conv3_3",
             "conv4_1", "conv4_2", "conv4_3", "conv5_1", "conv5_2", "conv5_3")
VGG_POOLS = ("pool1", "pool2", "pool3", "pool4", "pool5")
FC_TAP = "fc"
LAST_POOL = "last_pool"
RNN_MODES = ("separate", "joint")
REDUCTIONS = ("auto", "flatten", "global_average", "grid_average", "conv1x1")
FEATURES_NAME = "rnn_features"


def vgg_conv(n):
    """The Keras name of the paper's nth VGG conv layer (1-based), e.g. 4 -> conv2_2."""
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= len(VGG_CONVS):
        raise ValueError(f"a VGG conv ordinal must be an int in 1..{len(VGG_CONVS)}, got {n!r}")
    return VGG_CONVS[n - 1]


def normalise_tap(tap):
    """The stored name of `tap`: TF1 `conv_N` / `pool_N` scopes -> Keras names."""
    if not isinstance(tap, str) or not tap:
        raise ValueError(f"a tap must be a non-empty layer name, got {tap!r}")
    for prefix, names in (("conv_", VGG_CONVS), ("pool_", VGG_POOLS)):
        suffix = tap[len(prefix):]
        if tap.startswith(prefix) and suffix.isdigit():
            index = int(suffix)
            if not 1 <= index <= len(names):
                raise ValueError(f"tap {tap!r}: VGG has {prefix}1 .. {prefix}{len(names)}")
            return names[index - 1]
    return tap


def _check_taps(taps):
    if isinstance(taps, str):
        taps = (taps,)
    try:
        taps = tuple(normalise_tap(tap) for tap in taps)
    except TypeError:
        raise ValueError(f"taps must be a sequence of layer names, got {taps!r}") from None
    if not taps or len(set(taps)) != len(taps):
        raise ValueError(f"taps must be a non-empty sequence of distinct layer names, got {taps!r}")
    return taps


def _check_reductions(tap_reduction, taps):
    """A {tap: reduction} dict for the conv/pool taps from a string or a mapping."""
    if isinstance(tap_reduction, str):
        per_tap = {tap: tap_reduction for tap in taps if tap != FC_TAP}
    elif isinstance(tap_reduction, dict):
        per_tap = {normalise_tap(tap): mode for tap, mode in tap_reduction.items()}
        unknown = sorted(set(per_tap) - set(taps) | ({FC_TAP} & set(per_tap)))
        if unknown:
            raise ValueError(f"tap_reduction names {unknown}, which are not conv/pool taps of {taps}")
        per_tap = {tap: per_tap.get(tap, "auto") for tap in taps if tap != FC_TAP}
    else:
        raise ValueError(f"tap_reduction must be one of {REDUCTIONS} or a {{tap: reduction}} dict, "
                         f"got {tap_reduction!r}")
    for tap, mode in per_tap.items():
        if mode not in REDUCTIONS:
            raise ValueError(f"tap_reduction of {tap!r} must be one of {REDUCTIONS}, got {mode!r}")
    return per_tap


def _reduce_tap(x, tap, mode, backbone, tap_grid, tap_channels):
    """(B*T, h, w, c) -> (B*T, F) in the `mode` form (module docstring)."""
    if len(x.shape) == 2:
        return x
    if mode == "auto":
        mode = "flatten" if backbone in backbones.FLATTENED else "global_average"
    if mode == "global_average":
        return keras.layers.GlobalAveragePooling2D(name=f"tap_{tap}_global_average")(x)
    if mode == "grid_average":
        height, width = x.shape[1], x.shape[2]
        if height % tap_grid or width % tap_grid:
            raise ValueError(f"tap {tap!r}: its {height}x{width} map does not divide into a "
                             f"{tap_grid}x{tap_grid} grid (tap_grid={tap_grid})")
        x = keras.layers.AveragePooling2D((height // tap_grid, width // tap_grid),
                                          name=f"tap_{tap}_grid_average")(x)
    elif mode == "conv1x1":
        x = keras.layers.Conv2D(tap_channels, 1, activation="relu", name=f"tap_{tap}_conv1x1")(x)
    return keras.layers.Flatten(name=f"tap_{tap}_flatten")(x)


def _feature_backbone(cnn, taps):
    """`cnn` with one output per conv/pool tap plus its own output, same name.

    The layers are `cnn`'s, so weight loaders that look the backbone up by
    name (`affnet.weights`) still find conv1_1 .. conv5_3.
    """
    output_layer = cnn.layers[-1].name
    resolved = {}
    for tap in taps:
        if tap == FC_TAP:
            continue
        name = output_layer if tap == LAST_POOL else tap
        try:
            cnn.get_layer(name)
        except ValueError:
            raise ValueError(f"tap {tap!r} is not a layer of backbone {cnn.name!r}; use one of "
                             f"{[layer.name for layer in cnn.layers[1:]]}, {LAST_POOL!r} or {FC_TAP!r}") from None
        resolved[tap] = name
    names = list(dict.fromkeys(list(resolved.values()) + [output_layer]))
    model = keras.Model(cnn.input, [cnn.get_layer(name).output for name in names], name=cnn.name)
    return model, names, resolved


@keras.saving.register_keras_serializable(package="affnet")
class CnnMultiRnn(ArgumentModel):
    """CNN plus multi-RNN ([MC] Sec. 5.3, Fig. 5-7; [OMG] Sec. III-B).

    Args:
      taps: layer names to tap (module docstring), e.g. ("pool2", "pool5", "fc").
      rnn_mode: "separate" (one RNN stack per tap, outputs concatenated:
        CNN-3RNN, CNN-2RNN) or "joint" (taps concatenated into one stack:
        CNN-1RNN, CNN2-to-1RNN).
      backbone, input_size, width, input_preprocessing: of the CNN.
      fc_units: units of fc1 (4096 VGG-Face [MC] 5.3.1; 1500 ResNet-50).
      dropout: drop rate after fc1 (0.5).
      rnn_dropout: drop rate after every RNN layer but the last (0.2, see the
        module docstring).
      landmarks: concatenate the 136 landmark values with the last pool before
        fc1 ([MC] 5.3.1; Table 6 shows the gain).
      rnn, rnn_layers, rnn_units: of every stack (GRU, 2 x 128, [MC] Fig. 6).
      head_fc_units: 0, or the units of `head_fc` (ReLU) between the RNN
        outputs and the output layer (the "-1FC" variants).
      tap_reduction, tap_grid, tap_channels: per-tap size reduction (module
        docstring); "auto" is the paper's.
      freeze_backbone: [MC] 5.2 strategy (i).
    """

    def __init__(self, taps=("pool2", "pool5", FC_TAP), rnn_mode="separate", backbone="vggface", input_size=96,
                 width=1.0, input_preprocessing="none", fc_units=4096, dropout=0.5, rnn_dropout=0.2,
                 landmarks=True, rnn="gru", rnn_layers=2, rnn_units=128, head_fc_units=0, tap_reduction="auto",
                 tap_grid=3, tap_channels=16, freeze_backbone=False, **kwargs):
        taps = _check_taps(taps)
        checks.check_choice(rnn_mode, "rnn_mode", RNN_MODES)
        backbones.check_backbone(backbone)
        checks.check_int(fc_units, "fc_units", 1 if FC_TAP in taps else 0)
        dropout = checks.check_rate(dropout)
        rnn_dropout = checks.check_rate(rnn_dropout)
        checks.check_bool(landmarks, "landmarks")
        checks.check_bool(freeze_backbone, "freeze_backbone")
        checks.check_int(rnn_layers, "rnn_layers", 1)
        checks.check_int(rnn_units, "rnn_units", 1)
        checks.check_int(head_fc_units, "head_fc_units", 0)
        checks.check_int(tap_grid, "tap_grid", 1)
        checks.check_int(tap_channels, "tap_channels", 1)
        reductions = _check_reductions(tap_reduction, taps)
        if landmarks and FC_TAP not in taps:
            raise ValueError(f"landmarks=True needs the {FC_TAP!r} tap (landmarks enter fc1, [MC] 5.3.1); "
                             f"taps are {taps}")
        cnn = backbones.build_backbone(backbone, input_size, width, input_preprocessing)
        cnn.trainable = not freeze_backbone
        feature_cnn, output_names, resolved = _feature_backbone(cnn, taps)
        inputs, images, landmark_input = heads.face_inputs(input_size, landmarks, sequence=True)
        maps = feature_cnn(FoldTime(name="fold_images")(images))
        maps = dict(zip(output_names, maps if isinstance(maps, (list, tuple)) else [maps]))

        tapped = {}
        if FC_TAP in taps:
            last = heads.backbone_features(maps[output_names[-1]], backbone, pool=False)
            last = UnfoldTime(name="unfold_features")([last, images])
            x = heads.concat_landmarks(last, landmark_input)
            tapped[FC_TAP] = heads.fc_stack(x, (fc_units,), dropout)
            # [MC] 5.3.1: the last-pool tap is fc1's input before the landmark
            # concatenation; share it when the tap asks for the same form.
            same_form = "flatten" if backbone in backbones.FLATTENED else "global_average"
            for tap, layer_name in resolved.items():
                if layer_name == output_names[-1] and reductions[tap] in ("auto", same_form):
                    tapped[tap] = last
        for tap in taps:
            if tap not in tapped:
                flat = _reduce_tap(maps[resolved[tap]], tap, reductions[tap], backbone, tap_grid, tap_channels)
                tapped[tap] = UnfoldTime(name=f"unfold_{tap}")([flat, images])

        stack = dict(rnn=rnn, layers=rnn_layers, units=rnn_units, dropout=rnn_dropout)
        if rnn_mode == "separate":
            outputs = [build_rnn_stack(tapped[tap], name=f"rnn_{tap}", **stack) for tap in taps]
            features = (keras.layers.Concatenate(name=FEATURES_NAME)(outputs) if len(outputs) > 1
                        else keras.layers.Identity(name=FEATURES_NAME)(outputs[0]))
        else:
            x = (keras.layers.Concatenate(name="taps_concat")([tapped[tap] for tap in taps]) if len(taps) > 1
                 else tapped[taps[0]])
            features = keras.layers.Identity(name=FEATURES_NAME)(build_rnn_stack(x, name="rnn", **stack))
        x = features
        if head_fc_units:
            x = keras.layers.Dense(head_fc_units, activation="relu", name="head_fc")(x)
        super().__init__(inputs=inputs, outputs=heads.va_output(x), **kwargs)
        self.backbone_name = backbone
        self.taps = taps
        self._arguments = dict(taps=list(taps), rnn_mode=rnn_mode, backbone=backbone, input_size=input_size,
                               width=width, input_preprocessing=input_preprocessing, fc_units=fc_units,
                               dropout=dropout, rnn_dropout=rnn_dropout, landmarks=landmarks, rnn=rnn,
                               rnn_layers=rnn_layers, rnn_units=rnn_units, head_fc_units=head_fc_units,
                               tap_reduction=tap_reduction if isinstance(tap_reduction, str) else dict(reductions),
                               tap_grid=tap_grid, tap_channels=tap_channels, freeze_backbone=freeze_backbone)

    @property
    def backbone(self):
        """The nested (multi-output) backbone model."""
        return self.get_layer(self.backbone_name)

    def tap_output(self, tap):
        """The (B, T, F) Keras tensor fed to the RNN(s) for `tap`."""
        tap = normalise_tap(tap)
        if tap not in self.taps:
            raise ValueError(f"{tap!r} is not a tap of {self.name!r}; its taps are {self.taps}")
        if tap == FC_TAP:
            name = "fc1_dropout" if self._arguments["dropout"] > 0.0 else "fc1"
        else:
            names = {layer.name for layer in self.layers}
            name = f"unfold_{tap}" if f"unfold_{tap}" in names else "unfold_features"
        return self.get_layer(name).output



def _spec(reference, paper_ccc=None, **defaults):
    return ModelSpec(builder=CnnMultiRnn, defaults=defaults, reference=reference, paper_ccc=paper_ccc,
                     sequence=True)


# [MC] Sec. 5.3.1 / 6.3: VGG-Face, fc1 4096 with landmarks, 2 x GRU(128),
# dropout 0.5 on fc1 and 0.2 after the first GRU layer.
_MC = dict(backbone="vggface", fc_units=4096, dropout=0.5, rnn_dropout=0.2, landmarks=True, rnn="gru",
           rnn_layers=2, rnn_units=128)
# [OMG] Sec. III-C, IV-2: cropped faces without landmark input, same RNN and dropouts.
_OMG = {**_MC, "landmarks": False}
_BEST_TAPS = ("pool2", "pool5", FC_TAP)  # [MC] "2nd pool, last pool, fc" (Fig. 5, 7).
_TWO_TAPS = ("pool5", FC_TAP)  # [OMG] III-B.1 CNN-2RNN: last pool and fc.
_HEAD_FC = 64  # [OMG] IV-2: best hidden FC before the output in 32-256.

# [MC] Table 5 (CNN-3RNN taps, all with post-processing, Aff-Wild2 pre-training):
# config name -> (taps, test CCC). "nth conv" -> VGG_CONVS[n - 1].
TABLE5 = {
    "cnn_3rnn_conv4_1_pool5_fc": ((vgg_conv(8), "pool5", FC_TAP), (0.416, 0.261)),
    "cnn_3rnn_conv3_1_pool5_fc": ((vgg_conv(5), "pool5", FC_TAP), (0.455, 0.322)),
    "cnn_3rnn": (_BEST_TAPS, (0.472, 0.329)),
    "cnn_3rnn_conv2_1_conv3_3_fc": ((vgg_conv(3), vgg_conv(7), FC_TAP), (0.402, 0.267)),
    "cnn_3rnn_conv5_3_pool5_fc": ((vgg_conv(13), "pool5", FC_TAP), (0.440, 0.248)),
    "cnn_3rnn_conv3_2_conv3_3_conv4_1": ((vgg_conv(6), vgg_conv(7), vgg_conv(8)), (0.328, 0.162)),
    "cnn_3rnn_conv3_3_conv4_1_conv4_2": ((vgg_conv(7), vgg_conv(8), vgg_conv(9)), (0.334, 0.172)),
    "cnn_3rnn_conv2_1_conv2_2_conv3_1": ((vgg_conv(3), vgg_conv(4), vgg_conv(5)), (0.345, 0.185)),
}

CONFIGS = {
    # [MC] Sec. 5.3.2, Fig. 7; Tables 3, 4, 6: 0.449 / 0.303 on OMG test.
    "cnn_1rnn": _spec("[MC] Sec. 5.3.2, Fig. 7, Tables 3-4", (0.449, 0.303), taps=_BEST_TAPS,
                      rnn_mode="joint", **_MC),
    # [MC] Sec. 5.3 "4-5% lower" variants (no table); taps as [OMG] III-B.1.
    "cnn_2rnn": _spec("[MC] Sec. 5.3, [OMG] Sec. III-B.1", taps=_TWO_TAPS, rnn_mode="separate", **_MC),
    "cnn_2rnn_1fc": _spec("[MC] Sec. 5.3, [OMG] Sec. III-B.1, IV-2", taps=_TWO_TAPS, rnn_mode="separate",
                          head_fc_units=_HEAD_FC, **_MC),
    "cnn2_to_1rnn": _spec("[MC] Sec. 5.3, 7.2", taps=_TWO_TAPS, rnn_mode="joint", **_MC),
    "cnn_3rnn_1fc": _spec("[MC] Sec. 5.3, [OMG] Sec. IV-2", taps=_BEST_TAPS, rnn_mode="separate",
                          head_fc_units=_HEAD_FC, **_MC),
    # [MC] Table 6: without landmarks.
    "cnn_1rnn_no_landmarks": _spec("[MC] Table 6", (0.429, 0.291), taps=_BEST_TAPS, rnn_mode="joint",
                                   **{**_MC, "landmarks": False}),
    "cnn_3rnn_no_landmarks": _spec("[MC] Table 6", (0.454, 0.310), taps=_BEST_TAPS, rnn_mode="separate",
                                   **{**_MC, "landmarks": False}),
    # [OMG] Tables III, IV (validation CCC, so no paper_ccc): the VGG-16 family.
    "omg_vgg16_fc_rnn": _spec("[OMG] Table II, III (basic CNN-RNN, val 0.447 / 0.269)", taps=(FC_TAP,),
                              rnn_mode="separate", **_OMG),
    "omg_cnn_1rnn": _spec("[OMG] Sec. III-B.1, Table III (val 0.407 / 0.301)",
                          taps=("conv5_3", "pool5", FC_TAP), rnn_mode="joint", **_OMG),
    "omg_cnn_2rnn": _spec("[OMG] Sec. III-B.1, Table III (val 0.427 / 0.286)", taps=_TWO_TAPS,
                          rnn_mode="separate", **_OMG),
    "omg_cnn_2rnn_fc": _spec("[OMG] Sec. III-B.1, Table III (val 0.421 / 0.283)", taps=_TWO_TAPS,
                             rnn_mode="separate", head_fc_units=_HEAD_FC, **_OMG),
    # [code] OMG_Challenge CNN_GRU_3RNN taps [conv_13, pool_5, fc].
    "omg_cnn_3rnn_last_conv": _spec("[OMG] Sec. III-B.1, Table III (val 0.456 / 0.246); [code]",
                                    taps=("conv5_3", "pool5", FC_TAP), rnn_mode="separate", **_OMG),
    "omg_cnn_3rnn_penultimate_conv": _spec("[OMG] Sec. III-B.1, Table III (val 0.453 / 0.215)",
                                           taps=("conv5_2", "pool5", FC_TAP), rnn_mode="separate", **_OMG),
    # [OMG] Sec. III-B.2, Table IV: ResNet-50 pooled features into the RNN, or through an FC
    # first (1500 units as [MC] 5.2.1; [OMG] searched 0-4096 and found no FC best).
    "omg_resnet50_rnn": _spec("[OMG] Sec. III-B.2, Table IV (val 0.444 / 0.267)", taps=(LAST_POOL,),
                              rnn_mode="separate", **{**_OMG, "backbone": "resnet50", "fc_units": 0}),
    "omg_resnet50_fc_rnn": _spec("[OMG] Sec. III-B.2, Table IV (val 0.407 / 0.264)", taps=(FC_TAP,),
                                 rnn_mode="separate", **{**_OMG, "backbone": "resnet50", "fc_units": 1500}),
}
# Rows without an fc tap have no fc1, hence nowhere for the landmarks to enter.
CONFIGS.update({name: _spec("[MC] Sec. 5.3.1, Fig. 5, Tables 3-6, 8" if taps == _BEST_TAPS else "[MC] Table 5",
                            ccc, taps=taps, rnn_mode="separate", **{**_MC, "landmarks": FC_TAP in taps})
                for name, (taps, ccc) in TABLE5.items()})

