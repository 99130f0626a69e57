"""Model-level fusion of [MC] Sec. 5.4.1 and [OMG] Sec. III-B.3.

`ModelFusion`: the same inputs as its sub-networks (`images`, and `landmarks`
when any sub-network takes them) -> (B, T, 2). Each sub-network is a
registered sequence configuration (`affnet.models.build`) nested as a model
named after it, cut before its output layer (the input of its `va_output`:
the concatenated RNN outputs of a CNN-3RNN, the RNN output of a CNN-1RNN or a
CNN-RNN). Then

  `fusion_concat` -> "rnn": `build_rnn_stack(name="fusion_rnn")`, one GRU
  layer of 128 ([MC] "Model-level Fusion + RNN") | "fc": `fusion_fc`, Dense
  128 + ReLU ([MC] "+ FC", [OMG] "a fully connected layer that preceded the
  output layer") | "none": nothing ([OMG] "passed to the output layer")
  -> `va_output` (linear 2).

The whole network trains end to end ([MC] 5.4.1). [OMG] III-C initialises the
sub-networks either from Aff-Wild pre-training or from their best standalone
runs: `init_weights={sub-network name: source}` names a source per
sub-network, a training workdir or a `.weights.h5` of that exact configuration
(loaded by structure), or a `.keras` file / `keras.Model` (copied by layer name,
recursing into nested models, shapes checked). The constructor only checks the
names; the training init step (`affnet.training.init.init_subnetworks`) loads them
into a fresh run, so a model restored from its own checkpoint never needs them.

Arguments other than the ones below (e.g. `width`, `input_size`, `landmarks`,
`fc_units`, `rnn_units`) are applied to every sub-network.
"""

import keras

from data_pipeline.base import checks
from affnet.layers.recurrent import build_rnn_stack
from affnet.models import affwildnet, heads, multi_rnn
from affnet.models.base import ArgumentModel
from affnet.models.spec import ModelSpec

FUSIONS = ("rnn", "fc", "none")
# The families a fusion nests: sequence VA networks that end in `va_output`. Looked up
# here, not in the registry, which registers this family too.
_NESTABLE = {name: spec for family in (affwildnet, multi_rnn) for name, spec in family.CONFIGS.items()
             if spec.sequence}
_KERAS_ARGUMENTS = ("name", "trainable", "dtype")


def _check_subnetworks(subnetworks):
    """[(name, overrides)] from names or (name, overrides) pairs."""
    if isinstance(subnetworks, str):
        subnetworks = (subnetworks,)
    entries = []
    try:
        for entry in subnetworks:
            if isinstance(entry, str):
                entries.append((entry, {}))
            else:
                name, overrides = entry
                if not isinstance(name, str) or not isinstance(overrides, dict):
                    raise TypeError
                entries.append((name, dict(overrides)))
    except (TypeError, ValueError):
        raise ValueError(f"subnetworks must be config names or (name, overrides dict) pairs, "
                         f"got {subnetworks!r}") from None
    names = [name for name, _ in entries]
    if len(entries) < 2 or len(set(names)) != len(names):
        raise ValueError(f"model-level fusion needs at least two distinct sub-networks, got {names!r}")
    return entries


def _check_init_weights(init_weights, names):
    """{sub-network name: source} from a dict or a "src1;src2" string in sub-network order."""
    if init_weights is None or init_weights == "":
        return {}
    if isinstance(init_weights, str):
        sources = init_weights.split(";")
        if len(sources) != len(names):
            raise ValueError(f"init_weights {init_weights!r} names {len(sources)} sources separated by ';' for "
                             f"the {len(names)} sub-networks {names}")
        return {name: source for name, source in zip(names, sources) if source}
    if not isinstance(init_weights, dict):
        raise ValueError(f"init_weights must be a dict or a 'src1;src2' string, got {init_weights!r}")
    unknown = sorted(set(init_weights) - set(names))
    if unknown:
        raise ValueError(f"init_weights names {unknown}, which are not sub-networks {names}")
    return dict(init_weights)


def _build_subnetwork(name, overrides):
    spec = _NESTABLE[name]
    return spec.builder(**{**spec.defaults, **overrides})


@keras.saving.register_keras_serializable(package="affnet")
class ModelFusion(ArgumentModel):
    """Sub-network RNN outputs concatenated -> GRU / FC / nothing -> linear 2.

    Args:
      subnetworks: registered config names, or (name, overrides) pairs, e.g.
        ("cnn_1rnn", "cnn_3rnn") for [MC] 5.4.1.
      fusion: "rnn", "fc" or "none" (module docstring).
      fusion_units: units of `fusion_rnn` / `fusion_fc` (128, [MC] 5.4.1).
      fusion_rnn, fusion_rnn_layers: cell and depth of the fusion RNN ("gru",
        1: "another single RNN layer with 128 GRU units").
      subnetwork_overrides: applied to every sub-network (extra keyword
        arguments are merged into it).
      init_weights: {sub-network name: source}, or "src1;src2" in
        sub-network order (the form `--model_overrides` can carry; an empty
        entry skips one); a source is a training workdir of that sub-network
        configuration (its best checkpoint), a .weights.h5, a .keras or a
        keras.Model. Not part of the config: the fused model's own weights
        supersede it.
    """

    def __init__(self, subnetworks=("cnn_1rnn", "cnn_3rnn"), fusion="rnn", fusion_units=128, fusion_rnn="gru",
                 fusion_rnn_layers=1, subnetwork_overrides=None, init_weights=None, **kwargs):
        model_kwargs = {key: kwargs.pop(key) for key in _KERAS_ARGUMENTS if key in kwargs}
        overrides = {**(subnetwork_overrides or {}), **kwargs}
        entries = _check_subnetworks(subnetworks)
        checks.check_choice(fusion, "fusion", FUSIONS)
        checks.check_int(fusion_units, "fusion_units")
        checks.check_int(fusion_rnn_layers, "fusion_rnn_layers")
        init_weights = _check_init_weights(init_weights, [name for name, _ in entries])
        features_models = []
        for name, own in entries:
            if name not in _NESTABLE:
                raise ValueError(f"sub-network {name!r} is not a sequence configuration of affwildnet or multi_rnn; "
                                 f"model-level fusion needs sequence models")
            subnetwork = _build_subnetwork(name, {**overrides, **own})
            features = subnetwork.get_layer("va_output").input
            features_models.append(keras.Model(subnetwork.input, features, name=name))
        keys = sorted({key for model in features_models for key in model.input})
        inputs = {}
        for key in keys:
            spec = next(model.input[key] for model in features_models if key in model.input)
            inputs[key] = keras.Input(tuple(spec.shape[1:]), name=key)
        outputs = [model({key: inputs[key] for key in model.input}) for model in features_models]
        x = keras.layers.Concatenate(name="fusion_concat")(outputs)
        if fusion == "rnn":
            x = build_rnn_stack(x, rnn=fusion_rnn, layers=fusion_rnn_layers, units=fusion_units, name="fusion_rnn")
        elif fusion == "fc":
            x = keras.layers.Dense(fusion_units, activation="relu", name="fusion_fc")(x)
        super().__init__(inputs=inputs, outputs=heads.va_output(x), **model_kwargs)
        self.subnetwork_names = tuple(name for name, _ in entries)
        # Read by the training init step (`affnet.training.init.init_subnetworks`); the
        # constructor reads nothing from disk.
        self.subnetwork_sources = init_weights
        self._subnetwork_overrides = {name: {**overrides, **own} for name, own in entries}
        self._arguments = dict(subnetworks=[[name, own] for name, own in entries], fusion=fusion,
                               fusion_units=fusion_units, fusion_rnn=fusion_rnn,
                               fusion_rnn_layers=fusion_rnn_layers, subnetwork_overrides=overrides)

    def subnetwork(self, name):
        """The nested sub-network `name` (cut before its output layer)."""
        if name not in self.subnetwork_names:
            raise ValueError(f"{name!r} is not a sub-network of {self.name!r}: {self.subnetwork_names}")
        return self.get_layer(name)

    def build_subnetwork(self, name):
        """A fresh, whole (output layer included) network of sub-network `name`'s
        configuration: what its standalone runs trained, to load their weights into."""
        self.subnetwork(name)
        return _build_subnetwork(name, self._subnetwork_overrides[name])


def _spec(reference, paper_ccc=None, **defaults):
    return ModelSpec(builder=ModelFusion, defaults=defaults, reference=reference, paper_ccc=paper_ccc,
                     sequence=True)


_MC_PAIR = ("cnn_1rnn", "cnn_3rnn")
_OMG_VGG = "omg_vgg16_fc_rnn"

CONFIGS = {
    # [MC] Sec. 5.4.1; Tables 3, 4, 6, 8: OMG test.
    "fusion_rnn": _spec("[MC] Sec. 5.4.1, Tables 3-4, 6, 8", (0.535, 0.365), subnetworks=_MC_PAIR,
                        fusion="rnn", fusion_units=128),
    "fusion_fc": _spec("[MC] Sec. 5.4.1, Table 3", (0.518, 0.348), subnetworks=_MC_PAIR, fusion="fc",
                       fusion_units=128),
    "fusion_rnn_no_landmarks": _spec("[MC] Table 6", (0.524, 0.352), subnetworks=_MC_PAIR, fusion="rnn",
                                     fusion_units=128, subnetwork_overrides={"landmarks": False}),
    # [OMG] Sec. III-B.3, Table V (validation CCC). The FC size is not given
    # ([OMG] IV-4 searched 0-128 and found none best): 128 as [MC].
    "omg_fusion_vgg_resnet": _spec("[OMG] Sec. III-B.3, Table V (val 0.455 / 0.275)",
                                   subnetworks=(_OMG_VGG, "omg_resnet50_rnn"), fusion="none"),
    "omg_fusion_vgg_resnet_fc_rnn": _spec("[OMG] Sec. III-B.3, Table V (val 0.441 / 0.273)",
                                          subnetworks=(_OMG_VGG, "omg_resnet50_fc_rnn"), fusion="none"),
    "omg_fusion_vgg_resnet_fc": _spec("[OMG] Sec. III-B.3, Table V (val 0.453 / 0.251)",
                                      subnetworks=(_OMG_VGG, "omg_resnet50_rnn"), fusion="fc",
                                      fusion_units=128),
    "omg_fusion_vgg_resnet_fc_rnn_fc": _spec("[OMG] Sec. III-B.3, Table V (val 0.450 / 0.245)",
                                             subnetworks=(_OMG_VGG, "omg_resnet50_fc_rnn"), fusion="fc",
                                             fusion_units=128),
}
