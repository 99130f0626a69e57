"""The paper configurations as flagfiles, shipped inside the package.

Each `<name>.flags` starts with its header: the paper and table it follows, the
expected metric and the command that runs it. They live beside the code (as
big_vision keeps `configs/`) so that an installed wheel carries them:
`affnet-train --flagfile=affwild2.flags` works from any folder.

A flagfile named on the command line is looked up (`resolve`) as a path first,
then, when no such file exists, among the shipped ones by its bare name (with
or without `.flags`). A `--flagfile=` line inside a flagfile is looked up beside
that file first, so `affwild2.flags` finds its `common.flags` wherever it is.
`expand_flagfiles` inlines them all before absl parses, in order, so a flag
given later on the command line still overrides the file's.
"""

import os
from typing import List, Optional, Sequence

DIRECTORY = os.path.dirname(os.path.abspath(__file__))
SUFFIX = ".flags"
_FLAGFILE_PREFIXES = ("--flagfile=", "-flagfile=")


def shipped() -> List[str]:
    """The bare names of the shipped configurations, e.g. ["afewva", "affwild", ...]."""
    return sorted(name[:-len(SUFFIX)] for name in os.listdir(DIRECTORY) if name.endswith(SUFFIX))


def path(name: str) -> str:
    """The shipped flagfile called `name` ("affwild2" or "affwild2.flags")."""
    base = os.path.basename(name)
    if not base.endswith(SUFFIX):
        base += SUFFIX
    return os.path.join(DIRECTORY, base)


def resolve(name: str, beside: Optional[str] = None) -> str:
    """The file `--flagfile=name` means: `name` relative to `beside` (the folder
    of the flagfile that names it), then to the working directory, then the
    shipped configuration of that bare name. Raises FileNotFoundError naming
    every place looked at and the shipped names."""
    candidates = [os.path.expanduser(name)]
    if beside is not None and not os.path.isabs(candidates[0]):
        candidates.insert(0, os.path.join(beside, candidates[0]))
    for candidate in candidates:
        if os.path.isfile(candidate):
            return candidate
    if os.path.dirname(name) == "" and os.path.isfile(path(name)):
        return path(name)
    raise FileNotFoundError(f"{name}: no such flagfile (looked in {', '.join(map(os.path.abspath, candidates))} "
                            f"and among the shipped configurations: {', '.join(shipped())})")


def _lines(flagfile: str) -> List[str]:
    with open(flagfile, encoding="utf-8") as f:
        return [line.strip() for line in f if line.strip() and not line.lstrip().startswith(("#", "//"))]


def expand_flagfiles(argv: Sequence[str], beside: Optional[str] = None, _seen: Sequence[str] = ()) -> List[str]:
    """`argv` with every `--flagfile=NAME` replaced by the flags of the file it
    resolves to (recursively); argv[0] is kept when `beside` is None."""
    expanded = []
    for index, arg in enumerate(argv):
        prefix = next((p for p in _FLAGFILE_PREFIXES if arg.startswith(p)), None)
        if prefix is None or (beside is None and index == 0):
            expanded.append(arg)
            continue
        flagfile = os.path.abspath(resolve(arg[len(prefix):], beside))
        if flagfile in _seen:
            raise ValueError(f"{flagfile}: the flagfile includes itself")
        expanded.extend(expand_flagfiles(_lines(flagfile), os.path.dirname(flagfile), (*_seen, flagfile)))
    return expanded
