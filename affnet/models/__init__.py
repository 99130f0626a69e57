"""Named paper configurations: `build(name, **overrides)` and `names()`."""

from affnet.models.registry import build, describe, names

__all__ = ["build", "describe", "names"]
