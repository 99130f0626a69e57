"""Weight transfer between Keras models: resolve a weight source, copy by layer name.

Used by every initialisation: [AW2] strategy (iii) (the RNN of a strategy-(i) run,
`models.strategy`), [FBN] MT-VGG-GRU from MT-VGG and A/V streams from single-stream
runs (`models.multitask`), [MC] model-level fusion from its sub-networks' runs and
`--init_weights` of another architecture (`affnet.training.init`). Layer names are
what make this possible: they match across architectures and the released weights.
A training workdir as a source is resolved in `affnet.training` (it needs the run's
checkpoints); everything here works on files and models only.
"""

import os

import keras


def load_source(source, like=None, where="weight source"):
    """(keras.Model, description) for `source`: a keras.Model, a `.keras` file, or
    (given `like`, a model of that exact configuration) a `.weights.h5` file loaded by
    structure into a fresh copy of `like`. ValueError naming `where` and the path otherwise."""
    if isinstance(source, keras.Model):
        return source, f"model {source.name!r}"
    path = os.fspath(source)
    if not os.path.exists(path):
        raise ValueError(f"{where}: {path!r} does not exist")
    if path.endswith(".keras"):
        return keras.models.load_model(path, compile=False), path
    if path.endswith(".weights.h5") and like is not None:
        clone = like.__class__.from_config(like.get_config())
        try:
            clone.load_weights(path)
        except Exception as error:
            raise ValueError(f"{where}: {path!r} does not hold weights of this configuration "
                             f"({like.name!r}): {error}") from error
        return clone, path
    kinds = "a .keras or a .weights.h5 file" if like is not None else "a .keras file"
    raise ValueError(f"{where}: {path!r} is not {kinds}")


def _shapes(layer):
    return [tuple(w.shape) for w in layer.weights]


def copy_layers(source, target, names, where="source"):
    """Copy the layers `names` of `source` into the same-named layers of `target` (a
    nested model is copied whole). Every layer is checked before anything is assigned;
    ValueError names the layer and `where`. Returns `names` as a list."""
    assignments = []
    for name in names:
        try:
            source_layer, target_layer = source.get_layer(name), target.get_layer(name)
        except ValueError:
            raise ValueError(f"{where}: layer {name!r} is missing from it or from {target.name!r}") from None
        if _shapes(source_layer) != _shapes(target_layer):
            raise ValueError(f"{where}: layer {name!r} has weights {_shapes(source_layer)}, "
                             f"{target.name!r} needs {_shapes(target_layer)}")
        assignments.append((target_layer, source_layer.get_weights()))
    for layer, values in assignments:
        layer.set_weights(values)
    return list(names)


def _matched_layers(source, target, where, strict):
    """([(path, target layer, source values)], [skipped paths]) pairing every weighted
    layer of `target` with the same-named layer of `source`, recursing into nested
    models. Strict: a missing or differently shaped layer raises ValueError naming
    `where`; otherwise it is skipped."""
    assignments, skipped = [], []

    def mismatch(path, message):
        if strict:
            raise ValueError(f"{where}: {message}")
        skipped.append(path)

    def visit(src, dst, prefix):
        for layer in dst.layers:
            if not layer.weights:
                continue
            path = f"{prefix}{layer.name}"
            try:
                other = src.get_layer(layer.name)
            except ValueError:
                mismatch(path, f"it has no layer {path!r}")
                continue
            if isinstance(layer, keras.Model):
                if isinstance(other, keras.Model):
                    visit(other, layer, f"{path}/")
                else:
                    mismatch(path, f"layer {path!r} is not a nested model there")
                continue
            if _shapes(layer) != _shapes(other):
                mismatch(path, f"layer {path!r} has weights {_shapes(other)}, the target needs {_shapes(layer)}")
                continue
            assignments.append((path, layer, other.get_weights()))

    visit(source, target, "")
    return assignments, skipped


def copy_by_name(source, target, where="source", strict=True):
    """Copy every weighted layer of `target` from the same-named layer of `source`,
    recursing into nested models; returns (copied paths, skipped paths).

    strict=True: ValueError naming `where` and the layer when `source` lacks one or its
    shapes differ, and nothing is assigned unless every layer matches. strict=False:
    such layers stay as they are and are returned as skipped ([FBN] MT-VGG from a VA
    run with a new output layer; [AW] Sec. 5.2 categorical).
    """
    assignments, skipped = _matched_layers(source, target, where, strict)
    for _, layer, values in assignments:
        layer.set_weights(values)
    return [path for path, _, _ in assignments], skipped
