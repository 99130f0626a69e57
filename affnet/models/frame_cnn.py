"""Frame-level CNN regressors of Aff-Wild ([AW] Sec. 4.1.1, 4.2.1) and OMG ([MC] Sec. 5.1).

`FrameCNN`: inputs `{"images": (B, S, S, 3) in [-1, 1], "landmarks": (B, 136)}`
(no "landmarks" when `landmarks=False`) -> (B, 2) (valence, arousal).
Backbone (a nested model named after it, see `backbones`) -> `flatten` /
`global_pool` -> `landmarks_concat` -> `fc1`, `fc1_dropout`, ... -> `va_output`
(layer names in `heads`).
"""

import keras

from data_pipeline.base import checks
from affnet.models import backbones, heads
from affnet.models.base import ArgumentModel
from affnet.models.spec import ModelSpec


@keras.saving.register_keras_serializable(package="affnet")
class FrameCNN(ArgumentModel):
    """A frame CNN: backbone, optional landmarks, ReLU FC layers, linear 2.

    Args:
      backbone: one of `backbones.BACKBONES`.
      input_size: S of the (S, S, 3) images.
      width: filter-count multiplier of the backbone (1.0 = paper).
      input_preprocessing: see `backbones.preprocessing`.
      fc_units: hidden FC sizes, e.g. (4096, 2048) for [AW] Table 7.
      dropout: drop rate after every hidden FC layer ([AW] 0.5).
      landmarks: concatenate the 136 landmark values with the backbone
        features before fc1 ([AW] scenario 2).
      fc_init: "glorot_uniform" (Keras default; the paper does not say for
        VGG/ResNet) or "truncated_normal" ([AW] 4.1.1 CNN-M: stddev 0.1,
        biases 1).
      freeze_backbone: make the backbone non-trainable (batch norm then runs
        in inference mode, Keras 3 semantics).
    """

    def __init__(self, backbone="vggface", input_size=96, width=1.0, input_preprocessing="none",
                 fc_units=(4096, 2048), dropout=0.5, landmarks=True, fc_init="glorot_uniform",
                 freeze_backbone=False, **kwargs):
        backbones.check_backbone(backbone)
        fc_units = checks.check_units(fc_units)
        dropout = checks.check_rate(dropout)
        checks.check_bool(landmarks, "landmarks")
        checks.check_bool(freeze_backbone, "freeze_backbone")
        heads.check_fc_init(fc_init)
        cnn = backbones.build_backbone(backbone, input_size, width, input_preprocessing)
        cnn.trainable = not freeze_backbone
        inputs, images, landmark_input = heads.face_inputs(input_size, landmarks, sequence=False)
        x = heads.backbone_features(cnn(images), backbone, pool=False)
        x = heads.concat_landmarks(x, landmark_input)
        x = heads.fc_stack(x, fc_units, dropout, fc_init)
        outputs = heads.va_output(x, fc_init)
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)
        self.backbone_name = backbone
        self._arguments = dict(backbone=backbone, input_size=input_size, width=width,
                               input_preprocessing=input_preprocessing, fc_units=list(fc_units),
                               dropout=dropout, landmarks=landmarks, fc_init=fc_init,
                               freeze_backbone=freeze_backbone)



def _spec(reference, paper_ccc=None, **defaults):
    return ModelSpec(builder=FrameCNN, defaults=defaults, reference=reference, paper_ccc=paper_ccc,
                     sequence=False)


CONFIGS = {
    # [AW] Table 4; MSE-trained baseline, 0.15 / 0.10 on Aff-Wild test ([AW] Table 5).
    "cnn_m": _spec("[AW] Sec. 4.1.1, Table 4", (0.15, 0.10), backbone="cnn_m", fc_units=(4096,),
                   dropout=0.0, landmarks=False, fc_init="truncated_normal"),
    # [AW] Table 7 with landmarks (scenario 2); Tables 9-10.
    "vggface_cnn": _spec("[AW] Table 7, Tables 9-10", (0.51, 0.33), backbone="vggface",
                         fc_units=(4096, 2048), dropout=0.5, landmarks=True),
    "vgg16_cnn": _spec("[AW] Table 7, Table 9", (0.40, 0.30), backbone="vgg16", fc_units=(4096, 2048),
                       dropout=0.5, landmarks=True),
    # The released TF1 VGG-Face CNNs (dkollias/Aff-Wild-models): no landmarks, no dropout at inference,
    # trained on (p - 128) / 128 pixels ("tf1").
    "vggface_4096x2000x2": _spec("[code] Aff-Wild-models vggface_4096x2000x2", backbone="vggface",
                                 fc_units=(4096, 2000), dropout=0.0, landmarks=False, input_preprocessing="tf1"),
    "vggface_4096x4096x2": _spec("[code] Aff-Wild-models vggface_4096x4096x2", backbone="vggface",
                                 fc_units=(4096, 4096), dropout=0.0, landmarks=False, input_preprocessing="tf1"),
    # [AW] Sec. 4.2.1.1: fc 1500, fc 256, landmarks with the pooled features; Table 9.
    "resnet50_cnn": _spec("[AW] Sec. 4.2.1.1, Table 9", (0.43, 0.30), backbone="resnet50",
                          fc_units=(1500, 256), dropout=0.5, landmarks=True),
    # [MC] Sec. 5.1: landmarks with the average-pooled features -> fc 1500 -> output.
    "densenet121_cnn": _spec("[MC] Sec. 5.1", backbone="densenet121", fc_units=(1500,), dropout=0.5,
                             landmarks=True, input_preprocessing="none"),
}
