"""A test server on its own event loop in a daemon thread: ``start()`` gives its URL, ``stop()``
ends it, and it works as a context manager. Subclasses implement ``serve``."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any


class ThreadedServer:
    """Serves ``serve()`` from a thread of its own; ``url`` once started."""

    #: the thread's name, for tracebacks and debuggers
    thread_name = "test-server"

    def __init__(self) -> None:
        self.url = ""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopped: asyncio.Event | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> str:
        """Serve from a daemon thread running its own event loop; return the base URL."""
        ready, failure = threading.Event(), []

        def run() -> None:
            try:
                asyncio.run(self.serve(lambda _: ready.set()))
            except BaseException as exc:
                failure.append(exc)
            finally:
                ready.set()

        self._thread = threading.Thread(target=run, name=self.thread_name, daemon=True)
        self._thread.start()
        ready.wait()
        if failure:
            raise failure[0]
        return self.url

    def stop(self) -> None:
        if self._thread and self._loop and self._stopped:
            self._loop.call_soon_threadsafe(self._stopped.set)
            self._thread.join()
            self._thread = None

    def __enter__(self) -> Any:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def serve(self, started: Callable[[str], object] = lambda url: None) -> None:
        """Serve on the running loop until ``stop()``: set ``self._loop`` and ``self._stopped``
        first, set ``self.url`` and call ``started(url)`` once listening (``serve_app`` does)."""
        raise NotImplementedError

    async def serve_app(self, app: Any, started: Callable[[str], object]) -> None:
        """Serve the aiohttp ``app`` on 127.0.0.1, a free port, until ``stop()``."""
        from aiohttp import web

        self._loop, self._stopped = asyncio.get_running_loop(), asyncio.Event()
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
        await runner.setup()
        try:
            await web.TCPSite(runner, "127.0.0.1", 0).start()
            self.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
            started(self.url)
            await self._stopped.wait()
        finally:
            await runner.cleanup()
