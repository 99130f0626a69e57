"""The registry of named paper configurations: every model family registered here.

Each family module exposes `CONFIGS: dict[str, ModelSpec]`; every entry cites its
table. Nothing here encodes configuration in class names. Model-level fusion
(`fusion`) nests configurations of `affwildnet` and `multi_rnn`, which it looks up
itself, so that no family imports this module.
"""

from affnet.models import affwildnet, facebehaviornet, frame_cnn, fusion, multi_rnn, multitask
from affnet.models.spec import ModelSpec

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
        raise ValueError(f"unknown model {name!r}; known: {', '.join(names())}") from None


def build(name, **overrides):
    """Build the named configuration with `overrides` applied to its defaults."""
    spec = describe(name)
    return spec.builder(**{**spec.defaults, **overrides})
