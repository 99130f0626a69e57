"""Argument checks shared by every constructor, option set and command line of both
packages: each raises ValueError naming the argument and the value received, and
returns the checked value, so a constructor reads `units = checks.check_int(units,
"units")`. A misspelled name gets the nearest valid ones (`suggest`), so every
"unknown name" error suggests the same way."""

import difflib


def suggest(name, known, list_known: bool = True) -> str:
    """`"; did you mean 'width'?"` when `name` is close to some of `known`;
    otherwise `"; known: a, b, c"` (or "" with `list_known=False`)."""
    known = sorted(str(k) for k in known)
    close = difflib.get_close_matches(str(name), known, n=3, cutoff=0.6)
    if close:
        return "; did you mean " + " or ".join(repr(c) for c in close) + "?"
    return f"; known: {', '.join(known)}" if list_known else ""


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
    """`value` if it is one of `choices`; otherwise the nearest valid names."""
    if value not in choices:
        raise ValueError(f"{argument} must be one of {tuple(choices)}, got {value!r}"
                         f"{suggest(value, choices, list_known=False)}")
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
