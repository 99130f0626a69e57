"""The registry of named paper configurations, merged from the family modules.

Each family module (`frame_cnn`, `affwildnet`, `multi_rnn`, `multitask`,
`facebehaviornet`) exposes `CONFIGS: dict[str, ModelSpec]`; every entry cites
its table. Nothing here encodes configuration in class names.
"""

import importlib

from affnet.models.spec import ModelSpec

_FAMILIES = ("frame_cnn", "affwildnet", "multi_rnn", "multitask", "facebehaviornet")


def _collect():
    configs = {}
    for family in _FAMILIES:
        module = importlib.import_module(f"affnet.models.{family}")
        for name, spec in module.CONFIGS.items():
            if name in configs:
                raise ValueError(f"model name {name!r} is defined twice (again in affnet.models.{family})")
            configs[name] = spec
    return configs


_CONFIGS = None


def _configs():
    global _CONFIGS
    if _CONFIGS is None:
        _CONFIGS = _collect()
    return _CONFIGS


def names():
    """All registered configuration names, sorted."""
    return sorted(_configs())


def describe(name) -> ModelSpec:
    """The `ModelSpec` of `name` (its defaults, table reference, paper CCC)."""
    try:
        return _configs()[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; known: {', '.join(names())}") from None


def build(name, **overrides):
    """Build the named configuration with `overrides` applied to its defaults."""
    spec = describe(name)
    return spec.builder(**{**spec.defaults, **overrides})
