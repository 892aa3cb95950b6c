"""Run · the one mark the async sources carry for ``scripts/unasync.py``, which writes the sync facade."""

from __future__ import annotations

from typing import Any, Callable, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


def caller_thread(*, via: str) -> Callable[[F], F]:
    """Mark a coroutine method whose sync twin runs on the caller's thread, not on the engine's.

    Such a method only checks its arguments and queues them; its sync twin calls the method of the
    same name on the attribute ``via`` of the async object (a thread-safe one), so the hot path
    never waits for another thread. Costs nothing at run time: it only sets an attribute.
    """
    def mark(method: F) -> F:
        method.__sagerun_caller_thread__ = via  # type: ignore[attr-defined]
        return method

    return mark
