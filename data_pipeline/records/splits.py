"""Subject-independent splits: check them, and derive them from subject ids.

Every paper's splits are subject independent ([AW] Sec. 3, [AW2] Sec. II-F,
RECOLA 16/15/15 subjects, AFEW-VA 5-fold person-independent cross-validation
[AW] Sec. 5.1.2): no subject may appear in two splits.
"""

import collections
import json
import os
from typing import Any, Dict, Iterable, List, Mapping, Sequence, Union

import numpy as np

MANIFEST = "manifest.json"


def _field(entry: Any, names: Sequence[str]):
    for name in names:
        if isinstance(entry, Mapping) and name in entry:
            return entry[name]
        if not isinstance(entry, Mapping) and hasattr(entry, name):
            return getattr(entry, name)
    return None


def _pairs(source) -> List[tuple]:
    """(subject, split, name) for every entry of the accepted inputs (see `check_subject_independent`)."""
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        if os.path.isdir(path):
            path = os.path.join(path, MANIFEST)
        try:
            with open(path) as f:
                manifest = json.load(f)
        except OSError as error:
            raise ValueError(f"{path}: cannot read the manifest ({error})") from error
        except ValueError as error:
            raise ValueError(f"{path}: not a JSON manifest ({error})") from error
        entries = manifest["videos"] if isinstance(manifest, Mapping) and "videos" in manifest else manifest
        if not isinstance(entries, list):
            raise ValueError(f"{path}: expected a list of videos or {{'videos': [...]}}")
        return _pairs(entries)
    pairs = []
    if isinstance(source, Mapping):
        for split, entries in source.items():
            for entry in entries:
                subject = entry if isinstance(entry, str) else _field(entry, ("subject_id", "subject"))
                name = entry if isinstance(entry, str) else _field(entry, ("video_id",))
                pairs.append((subject, str(split), name))
        return pairs
    for entry in source:
        pairs.append((_field(entry, ("subject_id", "subject")), _field(entry, ("split",)),
                      _field(entry, ("video_id",))))
    return pairs


def check_subject_independent(source: Union[str, os.PathLike, Mapping, Iterable],
                              allow_missing: bool = False) -> Dict[str, List[str]]:
    """Raise ValueError naming a subject found in two splits; returns split -> sorted subjects.

    `source`: a manifest path (or a folder holding `manifest.json`, as the
    adapters write), a mapping split -> records / items / subject ids, or an
    iterable of items or dicts with `subject_id` (or `subject`) and `split`.
    An entry without a subject or split cannot be checked: ValueError unless
    `allow_missing`, which skips it.
    """
    subjects = collections.defaultdict(set)
    where = collections.defaultdict(dict)
    for subject, split, name in _pairs(source):
        if not subject or not split:
            if allow_missing:
                continue
            raise ValueError(f"entry {name or '?'} has no {'subject' if not subject else 'split'}; "
                             "cannot check subject independence")
        subjects[str(subject)].add(str(split))
        where[str(subject)].setdefault(str(split), name)
    for subject in sorted(subjects):
        if len(subjects[subject]) > 1:
            found = ", ".join(f"{split} ({where[subject][split] or '?'})" for split in sorted(subjects[subject]))
            raise ValueError(f"subject {subject!r} is in more than one split: {found}")
    by_split = collections.defaultdict(list)
    for subject, splits in subjects.items():
        by_split[next(iter(splits))].append(subject)
    return {split: sorted(names) for split, names in sorted(by_split.items())}


def derive_subject_splits(subject_ids: Iterable[str], sizes: Mapping[str, float],
                          seed: int = 0) -> Dict[str, str]:
    """subject -> split, shuffling the unique subjects with `seed`.

    `sizes` maps split name to a subject count (all ints, summing to the number
    of subjects; e.g. RECOLA's {'train': 16, 'validation': 15, 'test': 15}) or
    to fractions (floats summing to 1; counts by largest remainder). The same
    subjects and seed always give the same splits, whatever the input order.
    """
    subjects = sorted({str(s) for s in subject_ids})
    if not subjects or "" in subjects:
        raise ValueError(f"need non-empty subject ids, got {subjects[:5]}")
    if not sizes:
        raise ValueError("sizes must name at least one split")
    values = list(sizes.values())
    if all(isinstance(v, (int, np.integer)) for v in values):
        counts = [int(v) for v in values]
        if sum(counts) != len(subjects) or min(counts) < 0:
            raise ValueError(f"split sizes {dict(sizes)} do not add up to the {len(subjects)} subjects")
    else:
        shares = np.asarray(values, np.float64)
        if (shares < 0).any() or not np.isclose(shares.sum(), 1.0):
            raise ValueError(f"split fractions must be >= 0 and sum to 1, got {dict(sizes)}")
        exact = shares * len(subjects)
        counts = np.floor(exact).astype(int)
        for i in np.argsort(-(exact - counts), kind="stable")[:len(subjects) - counts.sum()]:
            counts[i] += 1
        counts = counts.tolist()
    order = np.random.default_rng(seed).permutation(len(subjects))
    assignment, start = {}, 0
    for split, count in zip(sizes, counts):
        for i in order[start:start + count]:
            assignment[subjects[i]] = split
        start += count
    return assignment


def subject_folds(subject_ids: Iterable[str], folds: int = 5, seed: int = 0,
                  prefix: str = "fold") -> Dict[str, str]:
    """subject -> 'fold<k>' for k-fold person-independent cross-validation ([AW] Sec. 5.1.2)."""
    subjects = sorted({str(s) for s in subject_ids})
    if int(folds) != folds or folds < 2:
        raise ValueError(f"folds must be an integer >= 2, got {folds!r}")
    if len(subjects) < folds:
        raise ValueError(f"{len(subjects)} subjects cannot fill {folds} folds")
    base, extra = divmod(len(subjects), int(folds))
    sizes = {f"{prefix}{k}": base + (k < extra) for k in range(int(folds))}
    return derive_subject_splits(subjects, sizes, seed)
