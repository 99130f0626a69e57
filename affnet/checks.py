"""Argument checks shared by every constructor: each raises ValueError naming the
argument and the value received (STYLE: "argument checks that raise ValueError naming
the received value") and returns the checked value, so a constructor reads
`units = checks.check_int(units, "units")`."""


def check_int(value, argument, minimum=1):
    """`value` if it is an int >= `minimum` (a bool is not an int here)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{argument} must be an int >= {minimum}, got {value!r}")
    return value


def check_bool(value, argument):
    """`value` if it is a bool."""
    if not isinstance(value, bool):
        raise ValueError(f"{argument} must be True or False, got {value!r}")
    return value


def check_choice(value, argument, choices):
    """`value` if it is one of `choices`."""
    if value not in choices:
        raise ValueError(f"{argument} must be one of {tuple(choices)}, got {value!r}")
    return value


def check_rate(value, argument="dropout"):
    """A drop rate in [0, 1) as a float."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
        raise ValueError(f"{argument} must be a drop rate in [0, 1), got {value!r}")
    return float(value)


def check_units(units, argument="fc_units", allow_empty=True):
    """A tuple of positive ints from an int (0 = none) or a sequence."""
    if isinstance(units, int) and not isinstance(units, bool):
        units = (units,) if units else ()
    try:
        checked = tuple(units)
    except TypeError:
        checked = None
    if checked is None or any(isinstance(u, bool) or not isinstance(u, int) or u <= 0 for u in checked) or (
            not checked and not allow_empty):
        raise ValueError(f"{argument} must be a sequence of positive ints, got {units!r}")
    return checked
