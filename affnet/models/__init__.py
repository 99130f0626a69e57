"""Named paper configurations: `build(name, **overrides)` and `names()`."""

from affnet.models.registry import build, check_arguments, describe, names

__all__ = ["build", "check_arguments", "describe", "names"]
