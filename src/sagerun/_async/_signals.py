"""Run · SIGTERM ends a run as Stopped, with its points flushed, instead of killing the process mid-run.

SageMaker stops a training or processing job with SIGTERM (then SIGKILL after a grace period), and
Python's default action for it ends the process at once: the run stays InProgress and its queue is
lost. When a run is opened on the main thread and the program has no SIGTERM handler of its own,
sagerun installs one that raises ``Terminated`` where the program is, as Ctrl-C raises
KeyboardInterrupt: ``with`` blocks unwind, runs close as Stopped, and the exit status is 143
(128 + SIGTERM), as for a process the signal killed. A handler the program set is never replaced. An async run on asyncio cancels the
task that opened it instead (``route_sigterm_to_task``) and raises ``Terminated`` once it is closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
from types import FrameType
from typing import Callable


class Terminated(SystemExit):
    """Raised in the main thread when the process receives SIGTERM; exits with status 143."""

    def __init__(self) -> None:
        super().__init__(128 + signal.SIGTERM)


def _raise_terminated(signum: int, frame: FrameType | None) -> None:
    raise Terminated()


def install_sigterm_handler() -> None:
    """Install the SIGTERM handler if this is the main thread and SIGTERM has its default action."""
    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _raise_terminated)


def route_sigterm_to_task(on_term: Callable[[], None]) -> Callable[[], None] | None:
    """For an async run on the main thread's asyncio loop, with SIGTERM at its default action (or
    sagerun's own): call ``on_term`` on the loop when SIGTERM arrives; return what undoes it.

    A handler that raises (as the synchronous one does) would raise inside whichever task the main
    thread runs at that moment, often the metrics drain; a loop signal handler lets the run cancel
    the task that opened it instead, so that its block unwinds and the run is flushed.
    """
    if threading.current_thread() is not threading.main_thread():
        return None
    if signal.getsignal(signal.SIGTERM) not in (signal.SIG_DFL, _raise_terminated):
        return None
    loop = asyncio.get_running_loop()  # the caller checked that this is asyncio
    loop.add_signal_handler(signal.SIGTERM, on_term)

    def undo() -> None:
        loop.remove_signal_handler(signal.SIGTERM)  # back to the default action

    return undo


def arm(stack: contextlib.AsyncExitStack, stopped: Callable[[], None]) -> None:
    """Make SIGTERM stop the run being opened by the current task, until ``stack`` closes.

    On the main thread's asyncio loop, ``stopped`` is called and the task is cancelled
    (``route_sigterm_to_task``); elsewhere the handler that raises ``Terminated`` is installed.
    """
    task = _asyncio_task()

    def on_term() -> None:
        stopped()
        if task is not None:
            task.cancel()

    undo = route_sigterm_to_task(on_term) if task is not None else None
    if undo is not None:
        stack.callback(undo)
    else:
        install_sigterm_handler()


def _asyncio_task() -> asyncio.Task[object] | None:
    try:
        asyncio.get_running_loop()
    except RuntimeError:  # trio, or no loop
        return None
    return asyncio.current_task()
