"""Artifacts · the script's console, kept with the run (``Session(capture_console=True)``).

While the run is open, ``sys.stdout`` and ``sys.stderr`` are tees: each write goes to the real
stream at once and is queued for a writer thread, which appends it to a file (0600). So a print
costs the training loop a queue put, never a disk write. sagerun's own log records go to the same
file. At close the streams are put back and the file is stored as the output artifact ``logs``
(``text/plain``), where ``log_file`` stores files.

Only what goes through Python's ``sys.stdout``/``sys.stderr`` is seen: output written straight to
the file descriptors by C code or by child processes is not. Inside a SageMaker job, CloudWatch
already has the whole console.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import sys
import tempfile
import threading
import time
from typing import Any, Callable, TextIO

import anyio

logger = logging.getLogger("sagerun")
ARTIFACT = "logs"


class _Tee:
    """Writes go to ``stream`` and to ``sink``; everything else is ``stream``'s."""

    def __init__(self, stream: TextIO, sink: queue.SimpleQueue[str | None]) -> None:
        self._stream, self._sink = stream, sink

    def write(self, text: str) -> int:
        written = self._stream.write(text)
        self._sink.put(text)
        return written

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


class _SinkHandler(logging.Handler):
    """sagerun's records into the file; also to the real stderr when nothing else would show them
    (no handler on the root logger: Python's last resort would have printed them)."""

    def __init__(self, sink: queue.SimpleQueue[str | None], stderr: TextIO) -> None:
        super().__init__()
        self._sink, self._stderr = sink, stderr
        self.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        line = self.format(record) + "\n"
        self._sink.put(line)
        if not logging.getLogger().handlers and record.levelno >= logging.WARNING:
            self._stderr.write(record.getMessage() + "\n")


class ConsoleCapture:
    """Tees the console into a file from ``start()`` to ``stop()``, which returns the file's path."""

    def __init__(self) -> None:
        self._sink: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        fd, self.path = tempfile.mkstemp(prefix="sagerun-console-", suffix=".log")  # 0600
        self._file = os.fdopen(fd, "w", encoding="utf-8", errors="replace")
        self._writer = threading.Thread(target=self._write, name="sagerun-console", daemon=True)
        self._saved: tuple[TextIO, TextIO] | None = None
        self._handler: _SinkHandler | None = None

    def start(self) -> None:
        self._writer.start()
        self._saved = (sys.stdout, sys.stderr)
        sys.stdout = _Tee(sys.stdout, self._sink)  # type: ignore[assignment]
        sys.stderr = _Tee(sys.stderr, self._sink)  # type: ignore[assignment]
        self._handler = _SinkHandler(self._sink, self._saved[1])
        logger.addHandler(self._handler)

    def stop(self) -> str:
        """Put the streams back (those a later capture installed stay) and finish the file."""
        if self._handler is not None:
            logger.removeHandler(self._handler)
        if self._saved is not None:
            for name, saved in zip(("stdout", "stderr"), self._saved):
                current = getattr(sys, name)
                if isinstance(current, _Tee) and current._sink is self._sink:
                    setattr(sys, name, saved)
        self._sink.put(None)
        self._writer.join()
        self._file.close()
        return self.path

    def _write(self) -> None:
        while (text := self._sink.get()) is not None:
            self._file.write(text)
        self._file.flush()


def arm(stack: contextlib.AsyncExitStack, store: Callable[[str], Any], deadline: Callable[[], float]) -> None:
    """Capture from now; closing ``stack`` stops, stores the file with ``store(path)`` before
    ``deadline()`` (``time.monotonic()``), even when cancelled, and deletes it. Never raises at close."""
    capture = ConsoleCapture()
    capture.start()

    async def finish() -> None:
        path = capture.stop()
        try:
            with anyio.CancelScope(shield=True), anyio.move_on_after(max(0.5, deadline() - time.monotonic())) as scope:
                await store(path)
            if scope.cancelled_caught:
                logger.error("sagerun: the console log of this run was not stored within close_timeout")
        except Exception as exc:
            logger.error("sagerun: the console log of this run was not stored: %s", exc)
        finally:
            with contextlib.suppress(OSError):
                os.unlink(path)

    stack.push_async_callback(finish)
