"""Initialise a fresh run's model from other runs (never on resume: a resumed run
restores its own checkpoint).

A source is a training workdir (its best checkpoint, rebuilt from its flags.json),
a `.keras` / `.weights.h5` file or a `keras.Model`; files and models are resolved,
and weights copied by layer name, by `affnet.weights.transfer`. Here:

  load_weights      `--init_weights`: the whole model ([FBN] MT-VGG from a VA run,
                    [AW] Sec. 5.2 categorical, [AW2] fine-tuning on RECOLA / AFEW-VA)
  init_subnetworks  [MC] 5.4.1 / [OMG] III-C model-level fusion: each sub-network
                    from its standalone run (`init_weights` build override)
  init_streams      [FBN] A/V-MT-VGG-GRU: each stream from a single-stream run
  init_rnn          [AW2] strategy (iii): the RNN and output of a strategy-(i) run
"""

import os

from affnet.models import multitask
from affnet.models import strategy as training_strategy
from affnet.training import checkpointing
from affnet.training import config as config_lib
from affnet.training.config import TrainConfig
from affnet.training.modeling import build_model
from affnet.weights import transfer


def _same_architecture(donor: TrainConfig, config: TrainConfig) -> bool:
    return donor.model == config.model  # The model group: name, overrides, categorical head.


def _restored_run(workdir: str):
    """(the model of the run in `workdir` with its best checkpoint, checkpoint path)."""
    donor = build_model(config_lib.load(workdir), mixed_precision="none", initialise=False)
    return donor, checkpointing.restore_model(donor, workdir, "best")


def load_weights(model, source: str, config: TrainConfig = None) -> str:
    """Initialise `model` from a workdir (its best checkpoint), a `.keras` or a
    `.weights.h5` file; returns what was loaded.

    A workdir of another architecture (its flags.json says) or a `.keras`
    file is copied by layer name: layers it lacks or shapes it does not share
    stay freshly initialised and are named in the returned text ([FBN] MT-VGG
    from a VA run with a new output layer; [AW] Sec. 5.2 categorical).
    """
    if not os.path.exists(source):
        raise ValueError(f"init weights {source!r} do not exist (expected a workdir, .keras or .weights.h5)")
    if os.path.isdir(source):
        if config is None or _same_architecture(config_lib.load(source), config):
            return checkpointing.restore_model(model, source, "best")
        donor, path = _restored_run(source)
    elif source.endswith(".weights.h5"):
        model.load_weights(source)
        return source
    elif source.endswith(".keras"):
        donor, path = transfer.load_source(source, where="init weights")
    else:
        raise ValueError(f"init weights {source!r} are neither a workdir, a .keras nor a .weights.h5 file")
    copied, skipped = transfer.copy_by_name(donor, model, strict=False)
    if not copied:
        raise ValueError(f"init weights {source!r}: no layer of {model.name!r} matches one of it by name and shape")
    return f"{path} by layer name ({len(copied)} layers; kept fresh: {', '.join(skipped) or 'none'})"


def init_subnetworks(model) -> list:
    """[MC] 5.4.1: load each sub-network of a `ModelFusion` from the source its
    `init_weights` names (`model.subnetwork_sources`); returns log lines ([] for
    other models). A workdir gives its best checkpoint; a `.weights.h5` of that exact
    configuration loads by structure; a `.keras` file or `keras.Model` is copied by
    layer name (nested models included, every shape checked)."""
    lines = []
    for name, source in getattr(model, "subnetwork_sources", {}).items():
        where = f"init_weights[{name!r}]"
        if isinstance(source, str) and os.path.isdir(source):
            donor = model.build_subnetwork(name)
            path = checkpointing.restore_model(donor, source, "best")
        else:
            donor, path = transfer.load_source(source, like=model.build_subnetwork(name), where=where)
        # The nested sub-network is cut before its output layer: copy what it has.
        transfer.copy_by_name(donor, model.subnetwork(name), f"{where} {path}")
        lines.append(f"sub-network {name} from {path}")
    return lines


def init_streams(model, streams) -> list:
    """[FBN] A/V-MT-VGG-GRU: each stream's backbone, fc1 and GRU from a
    single-stream MT-VGG-GRU run ({stream: workdir, `.keras`}); returns log lines."""
    lines = []
    for stream, source in streams:
        donor = _restored_run(source)[0] if os.path.isdir(source) else source
        copied = multitask.init_stream_from(model, stream, donor)
        lines.append(f"{stream} stream: {', '.join(copied)} from {source}")
    return lines


def init_rnn(model, source: str):
    """[AW2] strategy (iii): copy the RNN and output layers of a strategy-(i) run
    (workdir, `.keras` or `.weights.h5`) into `model`."""
    if os.path.isdir(source):
        donor = model.__class__.from_config(model.get_config())
        checkpointing.restore_model(donor, source, "best")
        source = donor
    return training_strategy.restore_rnn_from(model, source, include_output=True)
