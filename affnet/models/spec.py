"""`ModelSpec`: one named paper configuration in the registry."""

import dataclasses
from typing import Any, Callable, Mapping, Optional, Tuple

import keras


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """A named configuration: a builder plus the arguments the paper fixes.

    Attributes:
      builder: callable returning a `keras.Model`; `build(name, **overrides)`
        calls it with `{**defaults, **overrides}`.
      defaults: the paper's settings for this configuration.
      reference: where the configuration comes from, e.g. "[AW] Table 8".
      paper_ccc: expected (valence, arousal) test CCC from the paper, if any.
      sequence: True for (B, T, ...) models, False for frame models.
    """

    builder: Callable[..., keras.Model]
    defaults: Mapping[str, Any]
    reference: str
    paper_ccc: Optional[Tuple[float, float]] = None
    sequence: bool = True
