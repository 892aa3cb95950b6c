"""Model · a backend's answer to one batch, and the one rule that reads it.

A request either fails as a whole (``TransportError``) or comes back with an ``ItemError`` per
point it did not take. Each point of an answered batch is then delivered, to be sent again (a
transient item code), or refused for good with the API's code and handed to the dead-letter hook.
"""

from __future__ import annotations

from typing import Callable, NamedTuple, Sequence

from .points import Point

DeadLetter = Callable[[str, Sequence[Point], str], None]
"""Called with the trial component name, the points that failed for good, and why."""

#: per-item codes worth sending again; the rest are the caller's to fix and are reported
RETRYABLE_ITEM_CODES = frozenset({"INTERNAL_ERROR", "CONFLICT_ERROR"})
#: how the reason given to the dead-letter hook begins when the API refused the points for good
REFUSED = "refused by the backend: "


class ItemError(NamedTuple):
    """A point of a batch the backend refused: its index in the batch and the API's code."""

    index: int
    code: str


class Answer(NamedTuple):
    """Indexes of a batch's points, sorted by what the answer means for them."""

    delivered: list[int]
    again: list[int]
    """came back with a transient code: send these again"""
    refused: dict[str, list[int]]
    """refused for good, by the API's code"""


def read_answer(size: int, errors: Sequence[ItemError]) -> Answer:
    """What the answer ``errors`` to a batch of ``size`` points means for each of them."""
    codes = {e.index: e.code for e in errors}
    again: list[int] = []
    refused: dict[str, list[int]] = {}
    for index in sorted(codes):
        code = codes[index]
        if code in RETRYABLE_ITEM_CODES:
            again.append(index)
        else:
            refused.setdefault(code, []).append(index)
    return Answer([i for i in range(size) if i not in codes], again, refused)


def refusal_reason(code: str) -> str:
    """The reason given to a dead-letter hook for points the API refused for good with ``code``."""
    return REFUSED + code


def refusal_code(reason: str) -> str | None:
    """The API's code when ``reason`` (given to a dead-letter hook) says the points were refused
    for good, so that sending them again as they are would be refused again; else ``None``."""
    return reason[len(REFUSED):] if reason.startswith(REFUSED) else None
