"""SIGTERM ends a run as Stopped, with its points flushed, instead of killing the process mid-run.

SageMaker stops a training or processing job with SIGTERM (then SIGKILL after a grace period), and
Python's default action for it ends the process at once: the run stays InProgress and its queue is
lost. When a run is opened on the main thread and the program has no SIGTERM handler of its own,
sagerun installs one that raises ``Terminated`` where the program is, as Ctrl-C raises
KeyboardInterrupt: ``with`` blocks unwind, runs close as Stopped, and the exit status is 143
(128 + SIGTERM), as for a process the signal killed. A handler the program set is never replaced.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType


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
