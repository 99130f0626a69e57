"""The registry of named paper configurations: every model family registered here.

Each family module exposes `CONFIGS: dict[str, ModelSpec]`; every entry cites its
table. Nothing here encodes configuration in class names. Model-level fusion
(`fusion`) nests configurations of `affwildnet` and `multi_rnn`, which it looks up
itself, so that no family imports this module.
"""

import inspect

from affnet.models import affwildnet, facebehaviornet, frame_cnn, fusion, multi_rnn, multitask
from affnet.models.spec import ModelSpec
from data_pipeline.base.checks import suggest

_FAMILIES = (frame_cnn, affwildnet, multi_rnn, fusion, multitask, facebehaviornet)


def _collect():
    configs = {}
    for family in _FAMILIES:
        for name, spec in family.CONFIGS.items():
            if name in configs:
                raise ValueError(f"model name {name!r} is defined twice (again in {family.__name__})")
            configs[name] = spec
    return configs


_CONFIGS = _collect()


def names():
    """All registered configuration names, sorted."""
    return sorted(_CONFIGS)


def describe(name) -> ModelSpec:
    """The `ModelSpec` of `name` (its defaults, table reference, paper CCC)."""
    try:
        return _CONFIGS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}{suggest(name, names())}") from None


# Keyword arguments every Keras model takes besides its builder's own.
_KERAS_ARGUMENTS = frozenset(("name", "trainable", "dtype"))


def _parameters(builder) -> frozenset:
    """The named arguments of `builder` (its `**kwargs` excluded)."""
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return frozenset(n for n, p in inspect.signature(builder).parameters.items() if p.kind in kinds)


def _subnetwork_names(subnetworks):
    if isinstance(subnetworks, str):
        return [subnetworks]
    return [entry if isinstance(entry, str) else entry[0] for entry in subnetworks
            if isinstance(entry, str) or isinstance(entry, (list, tuple)) and entry]


def check_arguments(name, **overrides):
    """Raise ValueError naming the nearest valid names when an override is not
    an argument of `name`'s builder (the builders' `**kwargs` go to Keras,
    which would otherwise accept a misspelled `widht=` without a word)."""
    spec = describe(name)
    accepted = _parameters(spec.builder) | _KERAS_ARGUMENTS
    unknown = sorted(set(overrides) - accepted)
    if "subnetworks" in accepted:
        # Model-level fusion ([MC] 5.4.1) passes the arguments it does not take
        # itself to every sub-network: each of them must take them.
        for subnetwork in _subnetwork_names({**spec.defaults, **overrides}["subnetworks"]):
            theirs = _parameters(describe(subnetwork).builder)
            for key in unknown:
                if key not in theirs:
                    raise ValueError(f"model {name!r} has no argument {key!r}, nor has its sub-network "
                                     f"{subnetwork!r}{suggest(key, accepted | theirs)}")
    elif unknown:
        raise ValueError(f"model {name!r} has no argument {unknown[0]!r}{suggest(unknown[0], accepted)}")


def build(name, **overrides):
    """Build the named configuration with `overrides` applied to its defaults;
    unknown overrides raise ValueError (`check_arguments`)."""
    check_arguments(name, **overrides)
    spec = describe(name)
    return spec.builder(**{**spec.defaults, **overrides})
