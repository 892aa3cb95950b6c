"""Sync mirror · the one background event loop of the sync facade: a thread running an anyio blocking portal.

Started on the first sync call that needs it, never in the caller's thread (so the facade works
where a loop already runs, as in Jupyter). Each coroutine runs on it in a copy of the caller's
context, so context-based lookups (the current run) see what the caller sees. At interpreter exit
the runs still open are closed, each flushing within its session's ``close_timeout``, then the
loop stops; if the program is dying of an uncaught exception (a training that raised past a
framework callback that opened a run), they end Failed with it, or Stopped for an interrupt. A
forked child starts with no engine: the parent's loop thread does not exist there (the runs it
inherited refuse points there on their own: ``sagerun._async._fork``).
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextlib
import contextvars
import dataclasses
import functools
import logging
import os
import sys
import threading
from types import TracebackType
from typing import Any, AsyncContextManager, Awaitable, Callable, ContextManager, Sequence, TypeVar

from anyio.from_thread import BlockingPortal, start_blocking_portal

from .._async._signals import install_sigterm_handler
from .._ingest.queue import set_engine_thread
from .._model.errors import EngineStoppedError, EngineThreadError

__all__ = ["call", "check_not_loop_thread", "dying_of", "enter", "leave", "portal", "submit"]

logger = logging.getLogger("sagerun")
T = TypeVar("T")
THREAD_NAME = "sagerun-engine"


@dataclasses.dataclass
class _Entered:
    """One sync ``with`` block open on the portal."""

    owner: object
    wrapped: ContextManager[Any]
    tokens: list[contextvars.Token[Any]]
    pid: int


class _State:
    """Everything the portal keeps; replaced whole in a forked child."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.portal: BlockingPortal | None = None
        self.portal_cm: ContextManager[BlockingPortal] | None = None
        self.thread_id: int | None = None
        self.pid = os.getpid()
        self.stopped = False
        self.open: dict[int, list[_Entered]] = {}
        """Open ``with`` blocks by ``id`` of their sync owner; entries hold the owner alive."""
        self.inherited: dict[int, list[_Entered]] = {}
        """Blocks a forked child inherited from its parent: exiting them touches nothing."""
        self.died_of: BaseException | None = None
        """The uncaught exception the program is ending with, as ``sys.excepthook`` saw it."""


_state = _State()
_atexit_registered = False


def check_not_loop_thread(what: str) -> None:
    """Raise ``EngineThreadError`` if called on the engine's own loop thread, where waiting deadlocks.

    Code runs there when sagerun calls back into user code, as the dead-letter hook does.
    """
    if threading.get_ident() == _state.thread_id:
        raise EngineThreadError(
            f"sagerun: {what} was called on sagerun's own event-loop thread (for example from a "
            "dead-letter hook) and would wait for that thread forever. Call it from another thread, "
            "or use the async API (sagerun.Run) in code that runs on the engine"
        )


def portal() -> BlockingPortal:
    """The running portal, started on first use."""
    current = _state.portal
    if current is not None:
        return current
    return _start()


def _start() -> BlockingPortal:
    global _atexit_registered
    state = _state
    with state.lock:
        if state.stopped:
            raise EngineStoppedError("sagerun: the engine has shut down because the interpreter is exiting; "
                               "sync calls made during shutdown cannot run")
        if state.portal is None:
            cm = start_blocking_portal("asyncio")
            started = cm.__enter__()
            state.thread_id, daemon = started.call(_name_loop_thread)
            set_engine_thread(state.thread_id)
            state.portal_cm, state.portal = cm, started
            if not _atexit_registered:
                _atexit_registered = True
                sys.excepthook = functools.partial(_record_death, sys.excepthook)
                if daemon:
                    atexit.register(_shutdown)  # after the program's own threads have ended
                else:
                    # Older anyio runs the portal in an executor thread, which the interpreter
                    # joins before atexit handlers run: stop it before that join instead.
                    threading._register_atexit(_shutdown)  # type: ignore[attr-defined]
            logger.debug("sagerun: engine thread started in process %d", state.pid)
        return state.portal


def _record_death(previous: Callable[..., Any], kind: type[BaseException], exc: BaseException,
                  tb: TracebackType | None) -> None:
    # Only the main thread's uncaught exceptions end the program: those are the ones that reach here.
    _state.died_of = exc
    previous(kind, exc, tb)


def dying_of() -> BaseException | None:
    """The uncaught exception the program is ending with, once ``sys.excepthook`` has seen it."""
    return _state.died_of


def _name_loop_thread() -> tuple[int, bool]:
    thread = threading.current_thread()
    thread.name = THREAD_NAME
    return threading.get_ident(), thread.daemon


def call(fn: Callable[..., Awaitable[T]], /, *args: Any, **kwargs: Any) -> T:
    """Run ``fn(*args, **kwargs)`` on the engine's loop, in a copy of the caller's context; wait.

    Raises:
        EngineThreadError: called on the engine's own thread.
        EngineStoppedError: the engine has shut down (the interpreter is exiting).
        Whatever ``fn`` raises.
    """
    check_not_loop_thread(getattr(fn, "__qualname__", repr(fn)) + "()")
    context = contextvars.copy_context()
    return portal().call(_in_context, context, functools.partial(fn, *args, **kwargs))


def submit(fn: Callable[..., Awaitable[T]], /, *args: Any, **kwargs: Any) -> concurrent.futures.Future[T]:
    """Start ``fn(*args, **kwargs)`` on the engine's loop, in a copy of the caller's context, and
    return its future at once: work a caller must not wait for, as a checkpoint's upload.

    Raises:
        EngineThreadError: called on the engine's own thread.
        EngineStoppedError: the engine has shut down (the interpreter is exiting).
    """
    check_not_loop_thread(getattr(fn, "__qualname__", repr(fn)) + "()")
    context = contextvars.copy_context()
    return portal().start_task_soon(_in_context, context, functools.partial(fn, *args, **kwargs))


async def _in_context(context: contextvars.Context, fn: Callable[[], Awaitable[T]]) -> T:
    # A task copies the context current at its creation: create it inside the caller's copy.
    task = context.run(asyncio.get_running_loop().create_task, _await(fn))
    return await task


async def _await(fn: Callable[[], Awaitable[T]]) -> T:
    return await fn()


class _Capture:
    """Enters an async context manager and records the context variables it set."""

    def __init__(self, cm: AsyncContextManager[Any], context_vars: Sequence[contextvars.ContextVar[Any]]) -> None:
        self.cm = cm
        self.context_vars = context_vars
        self.values: list[tuple[contextvars.ContextVar[Any], Any]] = []

    async def __aenter__(self) -> Any:
        result = await self.cm.__aenter__()
        missing = object()
        for var in self.context_vars:
            value = var.get(missing)
            if value is not missing:
                self.values.append((var, value))
        return result

    async def __aexit__(self, *exc_info: Any) -> bool | None:
        return await self.cm.__aexit__(*exc_info)


def enter(owner: object, async_cm: AsyncContextManager[T],
          context_vars: Sequence[contextvars.ContextVar[Any]] = ()) -> T:
    """Enter ``async_cm`` on the engine for the sync ``with`` block of ``owner``.

    Entering and leaving run in one task of the engine, as anyio task groups require. The
    ``context_vars`` the async ``__aenter__`` set are set in the caller's context too, as an
    ``async with`` would leave them for the code inside the block.

    Raises:
        EngineThreadError: called on the engine's own thread.
        Whatever ``__aenter__`` raises.
    """
    check_not_loop_thread(f"entering {owner!r}")
    install_sigterm_handler()
    capture = _Capture(async_cm, context_vars)
    wrapped = portal().wrap_async_context_manager(capture)
    result = wrapped.__enter__()
    tokens = [var.set(value) for var, value in capture.values]
    with _state.lock:
        _state.open.setdefault(id(owner), []).append(_Entered(owner, wrapped, tokens, os.getpid()))
    return result


def leave(owner: object, exc_type: type[BaseException] | None, exc: BaseException | None,
         tb: Any) -> bool | None:
    """Leave the innermost sync ``with`` block of ``owner`` entered by ``enter``.

    In a forked child, leaving a block the parent entered does nothing: its engine is not here.

    Raises:
        RuntimeError: ``owner`` is not entered (EngineThreadError: called on the engine's own thread).
    """
    state = _state
    with state.lock:
        inherited = id(owner) in state.inherited
        entry = _pop(state.inherited if inherited else state.open, owner)
    if entry is None:
        raise RuntimeError(f"{owner!r} is not entered: __exit__ without __enter__")
    _reset(entry.tokens)
    if inherited:
        logger.debug("sagerun: %r was entered in the parent process %d; leaving it in the forked child "
                     "does nothing", owner, entry.pid)
        return None
    check_not_loop_thread(f"leaving {owner!r}")
    return entry.wrapped.__exit__(exc_type, exc, tb)


def _pop(table: dict[int, list[_Entered]], owner: object) -> _Entered | None:
    stack = table.get(id(owner))
    if not stack:
        return None
    entry = stack.pop()
    if not stack:
        del table[id(owner)]
    return entry


def _reset(tokens: list[contextvars.Token[Any]]) -> None:
    for token in reversed(tokens):
        # Left in another context than entered (another thread, a notebook cell run as a task):
        # that context never saw the value, so there is nothing to undo.
        with contextlib.suppress(ValueError):
            token.var.reset(token)


def _shutdown() -> None:
    """At interpreter exit: close the runs still open (each flushes within its close_timeout), then stop."""
    state = _state
    if state.pid != os.getpid():
        return
    with state.lock:
        state.stopped = True
        entries = [entry for stack in state.open.values() for entry in stack]
        state.open.clear()
    died_of = state.died_of
    if entries:
        logger.info("sagerun: closing %d run(s) left open at interpreter exit%s", len(entries),
                    f", which the uncaught {type(died_of).__name__} ends" if died_of is not None else "")
    for entry in reversed(entries):
        _reset(entry.tokens)
        try:
            if died_of is None:
                entry.wrapped.__exit__(None, None, None)
            else:
                entry.wrapped.__exit__(type(died_of), died_of, died_of.__traceback__)
        except Exception:
            logger.exception("sagerun: closing %r at interpreter exit failed", entry.owner)
    _stop(state)


def _stop(state: _State) -> None:
    current, cm = state.portal, state.portal_cm
    state.portal = state.portal_cm = None
    if current is None or cm is None:
        return
    with contextlib.suppress(RuntimeError):  # already stopped
        current.call(current.stop, True)
    cm.__exit__(None, None, None)
    state.thread_id = None
    set_engine_thread(None)


_orphans: list[_State] = []
"""The parents' engine states in a forked child, kept so that they are never finalized there."""


def _after_fork_in_child() -> None:
    global _state
    parent = _state
    if parent.portal is not None:
        # The parent's loop thread does not exist here. When start_blocking_portal's context manager
        # is finalized it asks the portal to stop and waits for an answer that would never come;
        # a portal that believes it is not running refuses at once instead.
        parent.portal._event_loop_thread_id = None  # type: ignore[attr-defined]
    _orphans.append(parent)
    child = _State()
    # Blocks open in the parent (and those it had itself inherited) are the parent's, not ours.
    for table in (parent.open, parent.inherited):
        for key, stack in table.items():
            child.inherited.setdefault(key, []).extend(stack)
    _state = child
    set_engine_thread(None)


# A child must not reuse the parent's loop: its thread did not survive the fork.
os.register_at_fork(after_in_child=_after_fork_in_child)

