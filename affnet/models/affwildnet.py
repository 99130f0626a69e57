"""CNN-RNN sequence regressors: AffWildNet ([AW] Table 8, [MC] Table 2) and the
Aff-Wild2 VGGFace/ResNet/DenseNet-RNN(-attention) grid ([AW2] Sec. III-B, Tables IV-VII).

`CnnRnn`: inputs `{"images": (B, T, S, S, 3) in [-1, 1], "landmarks": (B, T, 136)}`
(no "landmarks" when `landmarks=False`) -> (B, T, 2) (valence, arousal).
T is dynamic. Graph and layer names:

  `fold_images` (B*T, S, S, 3) -> backbone (nested model, `backbones`) ->
  `flatten` | `global_pool` -> `unfold_features` (B, T, F) -> `landmarks_concat`
  -> `fc1` (ReLU) -> `fc1_dropout` -> `rnn...` (the stack of
  `affnet.layers.recurrent.build_rnn_stack`, dropout between its layers) ->
  `va_output` (linear Dense(2) on the last axis).

`rnn_input="fc1"` feeds fc1 to the RNN ([AW] Table 8; [AW2] "better than the
last pooling layer"); `rnn_input="pool"` feeds the last pooling output after
global average pooling ([AW2] Sec. III-B; the ResNet/DenseNet-RNNs) and builds
no fc1, so `fc_units` is ignored there. `fc_units=0` with "fc1" also drops fc1:
the released affwildnet-resnet-gru feeds the pooled ResNet features straight
into the GRU [code]. ResNet-50 / DenseNet-121 features are always globally
averaged, VGG-Face's flattened ([AW] 4.2.1).
"""

import keras

from data_pipeline.base import checks
from affnet.layers.recurrent import ATTENTION_PLACEMENTS, RNNS, build_rnn_stack
from affnet.layers.sequence import FoldTime, UnfoldTime
from affnet.models import backbones, heads
from affnet.models.base import ArgumentModel
from affnet.models.spec import ModelSpec

RNN_INPUTS = ("fc1", "pool")
RNN_NAME = "rnn"


@keras.saving.register_keras_serializable(package="affnet")
class CnnRnn(ArgumentModel):
    """Backbone -> (landmarks) -> fc1 -> RNN stack -> linear (valence, arousal).

    Args:
      backbone: one of `backbones.BACKBONES` ("resnet50_slim" needs
        `affnet.models.backbones.slim_resnet`).
      input_size, width, input_preprocessing: of the backbone.
      fc_units: units of fc1 (4096 VGG-Face, 1500 ResNet-50 [AW] Table 8);
        0 = no fc1.
      dropout: drop rate after fc1 and between RNN layers ([AW] Table 8: 0.5).
      landmarks: concatenate the 136 landmark values with the backbone
        features ([AW] scenario 2).
      rnn: "gru", "lstm" (peephole, [AW]) or "indrnn" ([AW2]).
      rnn_layers, rnn_units: 2 x 128 ([AW] Table 14, [AW2]).
      attention_length: 0 = no attention; 32 = [AW2] GRU-attention (TF1
        AttentionCellWrapper attn_length).
      attention_placement: "stack" (the wrapper around the whole RNN stack,
        our reading of [AW2]) or "top" (around the last layer only); see
        `affnet.layers.attention`.
      rnn_input: "fc1" or "pool" (see the module docstring).
      freeze_backbone: [AW2] strategy (i); see `strategy`.
    """

    def __init__(self, backbone="vggface", input_size=96, width=1.0, input_preprocessing="none",
                 fc_units=4096, dropout=0.5, landmarks=True, rnn="gru", rnn_layers=2, rnn_units=128,
                 attention_length=0, attention_placement="stack", rnn_input="fc1", freeze_backbone=False,
                 **kwargs):
        backbones.check_backbone(backbone)
        checks.check_int(fc_units, "fc_units", minimum=0)
        dropout = checks.check_rate(dropout)
        checks.check_bool(landmarks, "landmarks")
        checks.check_bool(freeze_backbone, "freeze_backbone")
        checks.check_choice(rnn, "rnn", RNNS)
        checks.check_int(rnn_layers, "rnn_layers")
        checks.check_int(rnn_units, "rnn_units")
        checks.check_int(attention_length, "attention_length", minimum=0)
        checks.check_choice(attention_placement, "attention_placement", ATTENTION_PLACEMENTS)
        checks.check_choice(rnn_input, "rnn_input", RNN_INPUTS)
        cnn = backbones.build_backbone(backbone, input_size, width, input_preprocessing)
        cnn.trainable = not freeze_backbone
        inputs, images, landmark_input = heads.face_inputs(input_size, landmarks, sequence=True)
        x = cnn(FoldTime(name="fold_images")(images))
        x = heads.backbone_features(x, backbone, pool=rnn_input == "pool")
        x = UnfoldTime(name="unfold_features")([x, images])
        x = heads.concat_landmarks(x, landmark_input)
        if rnn_input == "fc1" and fc_units:
            x = heads.fc_stack(x, (fc_units,), dropout)
        x = build_rnn_stack(x, rnn=rnn, layers=rnn_layers, units=rnn_units, dropout=dropout,
                            attention_length=attention_length, attention_placement=attention_placement,
                            name=RNN_NAME)
        outputs = heads.va_output(x)
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)
        self.backbone_name = backbone
        self._arguments = dict(backbone=backbone, input_size=input_size, width=width,
                               input_preprocessing=input_preprocessing, fc_units=fc_units, dropout=dropout,
                               landmarks=landmarks, rnn=rnn, rnn_layers=rnn_layers, rnn_units=rnn_units,
                               attention_length=attention_length, attention_placement=attention_placement,
                               rnn_input=rnn_input,
                               freeze_backbone=freeze_backbone)



def _spec(reference, paper_ccc=None, **defaults):
    return ModelSpec(builder=CnnRnn, defaults=defaults, reference=reference, paper_ccc=paper_ccc,
                     sequence=True)


# [AW2] Sec. III-B: VGGFACE1 = VGG-Face pre-trained on VGGFace, ResNet2 =
# ResNet-50 on VGGFace2, DenseNet-121 on ImageNet. Those weights exist today
# only as keras-vggface / Keras files, so these configs default to the matching
# input normalisation; the [AW] configs keep "none" (trained here), the released
# TF1 models' entries "tf1".
# The RNN is 2 x 128 throughout; [AW2] does not give a dropout rate, so [AW]'s
# 0.5 is used, and it uses no landmarks.
_VGGFACE1 = dict(backbone="vggface", input_preprocessing="vggface1", fc_units=4096, rnn_input="fc1")
_RESNET2 = dict(backbone="resnet50", input_preprocessing="vggface2", rnn_input="pool")
_DENSENET = dict(backbone="densenet121", input_preprocessing="torch_imagenet", rnn_input="pool")
# [AW2] Sec. IV-A: attention length 32.
_ATTENTION = 32

CONFIGS = {
    # [AW] Table 8, scenario 2 (landmarks into fc1); Tables 12-14: 0.57 / 0.43 on Aff-Wild test.
    "affwildnet_vggface": _spec("[AW] Table 8, Tables 12-14", (0.57, 0.43), backbone="vggface",
                                fc_units=4096, dropout=0.5, landmarks=True, rnn="gru"),
    # [AW] Table 8 / [MC] Table 2: ResNet-50 pooled features ++ landmarks -> fc1 1500.
    "affwildnet_resnet50": _spec("[AW] Table 8, [MC] Table 2", backbone="resnet50", fc_units=1500,
                                 dropout=0.5, landmarks=True, rnn="gru"),
    # [MC] Sec. 5.2.2 DenseNet-RNN: AffWildNet with DenseNet-121.
    "densenet121_rnn": _spec("[MC] Sec. 5.2.2", backbone="densenet121", fc_units=1500, dropout=0.5,
                             landmarks=True, rnn="gru"),
    # Released TF1 models [code]: no landmarks, dropout off (inference), GRU -> linear 2,
    # trained on (p - 128) / 128 pixels ("tf1").
    "affwildnet_vggface_gru_released": _spec("[code] Aff-Wild-models affwildnet/vggface_gru.py",
                                             backbone="vggface", fc_units=4096, dropout=0.0,
                                             landmarks=False, rnn="gru", input_preprocessing="tf1"),
    "affwildnet_resnet_gru_released": _spec("[code] Aff-Wild-models affwildnet/resnet-gru",
                                            backbone="resnet50_slim", fc_units=0, dropout=0.0,
                                            landmarks=False, rnn="gru", input_preprocessing="tf1"),
    # [AW2] Tables IV, VII.
    "vggface_gru": _spec("[AW2] Tables IV, VII (VGGFACE1-GRU)", (0.52, 0.41), **_VGGFACE1, dropout=0.5,
                         landmarks=False, rnn="gru"),
    "vggface_gru_attention": _spec("[AW2] Table VII, Fig. 6 (VGGFACE1-GRU-attention)", (0.55, 0.45),
                                   **_VGGFACE1, dropout=0.5, landmarks=False, rnn="gru",
                                   attention_length=_ATTENTION),
    # [AW2] Tables V, VII.
    "resnet50_gru": _spec("[AW2] Tables V, VII (ResNet2-GRU)", (0.50, 0.42), **_RESNET2, dropout=0.5,
                          landmarks=False, rnn="gru"),
    "resnet50_gru_attention": _spec("[AW2] Table VII (ResNet2-GRU-attention)", (0.53, 0.43), **_RESNET2,
                                    dropout=0.5, landmarks=False, rnn="gru", attention_length=_ATTENTION),
    # [AW2] Tables VI, VII.
    "densenet121_gru": _spec("[AW2] Tables VI, VII (DenseNet-GRU)", (0.48, 0.39), **_DENSENET, dropout=0.5,
                             landmarks=False, rnn="gru"),
    "densenet121_gru_attention": _spec("[AW2] Table VII (DenseNet-GRU-attention)", (0.52, 0.41),
                                       **_DENSENET, dropout=0.5, landmarks=False, rnn="gru",
                                       attention_length=_ATTENTION),
}
