"""`key=value` settings as typed on a command line (`--model_overrides=width=0.125,fc_units=(128,128)`,
`--set width=0.5`), parsed one way for every command: values that are Python literals become
them, others stay strings (`backbone=resnet50`)."""

import ast
from typing import Any, Dict, Iterable, List, Union


def split_items(text: str) -> List[str]:
    """`text` split at the commas outside brackets: "a=1,b=(2,3)" -> ["a=1", "b=(2,3)"]."""
    items, depth, start = [], 0, 0
    for i, char in enumerate(text):
        depth += char in "([{"
        depth -= char in ")]}"
        if char == "," and depth == 0:
            items.append(text[start:i])
            start = i + 1
    items.append(text[start:])
    return [item.strip() for item in items if item.strip()]


def parse(items: Union[str, Iterable[str], None], what: str = "setting") -> Dict[str, Any]:
    """{key: value} of "k=v,k2=v2" text (commas inside brackets belong to the value) or of a
    list of "k=v" items; `what` names the setting in the error."""
    if isinstance(items, str) or items is None:
        items = split_items(items or "")
    parsed = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"{what}: {item!r} is not of the form key=value")
        try:
            parsed[key.strip()] = ast.literal_eval(value.strip())
        except (ValueError, SyntaxError):
            parsed[key.strip()] = value.strip()
    return parsed
