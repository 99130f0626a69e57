"""Nearest valid names for a misspelled one, for error messages.

One helper for every "unknown key" error (model names, build overrides,
configuration settings), so they all suggest the same way.
"""

import difflib


def suggest(name, known, list_known: bool = True) -> str:
    """`"; did you mean 'width'?"` when `name` is close to some of `known`;
    otherwise `"; known: a, b, c"` (or "" with `list_known=False`)."""
    known = sorted(str(k) for k in known)
    close = difflib.get_close_matches(str(name), known, n=3, cutoff=0.6)
    if close:
        return "; did you mean " + " or ".join(repr(c) for c in close) + "?"
    return f"; known: {', '.join(known)}" if list_known else ""
