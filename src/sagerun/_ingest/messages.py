"""Ingest · the messages between a run and its sender process, one named type each.

On the wire each is a list, its kind then its fields in order (``["flush", 3]``), as orjson writes
it behind the frame length of ``frames``. ``encode`` and ``decode`` are the only code that knows
the layout; both sides exchange these types.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Union

from .._model.points import Point

# -- parent to sender ------------------------------------------------------------------------------


class Start(NamedTuple):
    """The first message: what the sender needs to send one run's metrics."""

    settings: dict[str, Any]
    """the run's ``Session`` fields (no boto session), and ``store`` for its spool"""
    trial_component_name: str
    endpoint_url: str
    region: str
    credentials: list[str | None]
    log_level: int
    kept_in: str | None
    """the store whose spool keeps the run's dead letters (the parent's default hook), or ``None``"""
    kind: str
    """``"sagemaker"`` (BatchPutMetrics) or ``"mlflow"`` (log-batch to the tracking URI in ``endpoint_url``)"""


class Points(NamedTuple):
    """Points handed over, oldest first."""

    points: list[Point]


class Credentials(NamedTuple):
    """Fresh credentials (the parent refreshes them; the sender never reads AWS config)."""

    credentials: list[str | None]


class Flush(NamedTuple):
    """Deliver everything handed over so far, then answer ``Flushed(seq)``."""

    seq: int
    within: float | None = None
    """the seconds the run's close has left, when this flush is the close's: retries wait less"""


class Close(NamedTuple):
    """Deliver what is left within ``seconds``, spool the rest, answer ``Closed`` and exit."""

    seconds: float


# -- sender to parent ------------------------------------------------------------------------------


class Ready(NamedTuple):
    """The sender is up: points may be handed over."""


class Stats(NamedTuple):
    """The sender's counts so far; the parent frees queue room as points settle."""

    delivered: int
    failed: int
    retried: int
    resent_unanswered: int
    in_flight_limit: int
    send_rate: float | None
    kept: int
    """of ``failed``, points the sender left in the spool itself (spilled, not sent by the close)"""


class Dead(NamedTuple):
    """Points that failed for good, for the run's dead-letter hook."""

    reason: str
    points: list[Point]


class Log(NamedTuple):
    """A log record of the sender, re-logged on the parent's ``sagerun`` logger."""

    level: int
    text: str


class Flushed(NamedTuple):
    seq: int


class Closed(NamedTuple):
    """The sender is done: nothing more will come."""


Message = Union[Start, Points, Credentials, Flush, Close, Ready, Stats, Dead, Log, Flushed, Closed]
_KINDS: dict[str, type] = {kind.__name__.lower(): kind for kind in Message.__args__}  # type: ignore[attr-defined]


def encode(message: Message) -> list[Any]:
    return [type(message).__name__.lower(), *message]


def decode(document: object) -> Message:
    """The message a received list stands for.

    Raises:
        ValueError: it is not a message of a known kind with its fields.
    """
    if not isinstance(document, list) or not document or document[0] not in _KINDS:
        raise ValueError(f"malformed sender message: {document!r:.80}")
    try:
        return _KINDS[document[0]](*document[1:])  # type: ignore[no-any-return]
    except TypeError as exc:
        raise ValueError(f"malformed sender message: {document!r:.80}: {exc}") from None
