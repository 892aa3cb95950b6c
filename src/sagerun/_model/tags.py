"""Model · a run's tags: checked at the call against SageMaker's rules, kept as its ``[{"Key", "Value"}]``.

The rules are SageMaker's (AddTags) on every backend, so that a run logged to the local store or
to MLflow can later be pushed to SageMaker as it is: a key of 1 to 128 characters and a value of
at most 256, both of letters, digits, white space and ``_ . : / = + - @``; no key starting with
``aws:``, which AWS keeps for itself; at most 50 tags on one resource.
"""

from __future__ import annotations

import unicodedata
from typing import Any, Iterable, Mapping

from .records import RunRecord

MAX_KEY = 128
MAX_VALUE = 256
#: tags on one resource, sagerun's own included
MAX_TAGS = 50
_PUNCTUATION = frozenset("_.:/=+-@")

Tags = list[dict[str, str]]


def _allowed_character(c: str) -> bool:
    return c in _PUNCTUATION or unicodedata.category(c)[0] in "LZN"


def _allowed(text: str) -> bool:
    return all(map(_allowed_character, text))


def tag_text(text: str, limit: int = MAX_VALUE) -> str:
    """``text`` (an error message, say) as a tag value SageMaker takes: any other character a space."""
    return "".join(c if _allowed_character(c) else " " for c in text)[:limit]


def check_tag(key: object, value: object) -> tuple[str, str]:
    """``(key, value)`` as SageMaker keeps them; a number or bool value becomes its text.

    Raises:
        TypeError: ``key`` is not a str, or ``value`` not a str, int, float or bool.
        ValueError: either breaks the rules of this module (the message says which).
    """
    if not isinstance(key, str):
        raise TypeError(f"tag key must be a str; got {type(key).__name__}")
    if isinstance(value, (bool, int, float)):
        value = str(value)
    if not isinstance(value, str):
        raise TypeError(f"tag {key!r}: value must be a str, int, float or bool; got {type(value).__name__}")
    if not 0 < len(key) <= MAX_KEY:
        raise ValueError(f"tag key must be 1 to {MAX_KEY} characters; got {len(key)}")
    if key.lower().startswith("aws:"):
        raise ValueError(f"tag key {key!r} starts with 'aws:', which AWS keeps for its own tags: choose another")
    if len(value) > MAX_VALUE:
        raise ValueError(f"tag {key!r}: value must be at most {MAX_VALUE} characters; got {len(value)}")
    for what, text in (("key", key), ("value", value)):
        if not _allowed(text):
            raise ValueError(f"tag {key!r}: the {what} {text!r} may hold only letters, digits, spaces and "
                             "_ . : / = + - @ (SageMaker's rule for tags)")
    return key, value


def check_tags(tags: object, argument: str = "tags") -> Tags:
    """``tags`` (a mapping of keys to values, or the SageMaker SDK's ``[{"Key": ..., "Value": ...}]``)
    as a checked list of ``{"Key", "Value"}``; a key given twice keeps its last value.

    Raises:
        TypeError, ValueError: ``tags`` is neither form, or a tag breaks ``check_tag``'s rules;
            the message names ``argument``.
    """
    if tags is None:
        return []
    pairs: Iterable[tuple[Any, Any]]
    if isinstance(tags, Mapping):
        pairs = tags.items()
    elif isinstance(tags, (list, tuple)):
        for n, tag in enumerate(tags):
            if not isinstance(tag, Mapping) or set(tag) != {"Key", "Value"}:
                raise TypeError(f"{argument} must be a dict of keys to values, or a list of "
                                f"{{'Key': ..., 'Value': ...}}; item {n} is {tag!r}")
        pairs = [(tag["Key"], tag["Value"]) for tag in tags]
    else:
        raise TypeError(f"{argument} must be a dict of keys to values, or a list of {{'Key': ..., 'Value': ...}}; "
                        f"got {type(tags).__name__}")
    checked: dict[str, str] = {}
    for key, value in pairs:
        try:
            key, value = check_tag(key, value)
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"{argument}: {exc}") from None
        checked[key] = value
    return as_list(checked)


def as_dict(tags: Tags) -> dict[str, str]:
    return {tag["Key"]: tag["Value"] for tag in tags}


def as_list(tags: Mapping[str, str]) -> Tags:
    return [{"Key": key, "Value": value} for key, value in tags.items()]


def merged(tags: Tags, updates: Tags) -> Tags:
    """``tags`` with ``updates`` set: a key already there takes the new value.

    Raises:
        ValueError: the result would hold more than ``MAX_TAGS - 1`` tags (one is sagerun's).
    """
    result = as_dict(tags) | as_dict(updates)
    if len(result) > MAX_TAGS - 1:
        raise ValueError(f"a run holds at most {MAX_TAGS - 1} tags (SageMaker's {MAX_TAGS}, one of them sagerun's); "
                         f"this would make {len(result)}")
    return as_list(result)


def listed(record: RunRecord, tags: Mapping[str, str] | None, include_children: bool) -> bool:
    """Whether ``list_runs`` lists ``record``: it has every tag of ``tags`` with its value, and is
    not a child run unless ``include_children``."""
    if record.parent is not None and not include_children:
        return False
    if not tags:
        return True
    have = as_dict(record.tags)
    return all(have.get(key) == str(value) for key, value in tags.items())
