"""A real MLflow tracking server in a subprocess, on 127.0.0.1, with its data in a folder of its own.

``with MlflowServer(tmp_path) as server:`` serves ``server.url``.  ``kill()`` is a crash (SIGKILL of
the whole process group) and ``restart()`` brings it back on the same port with the same sqlite
database and artifacts folder, so what was written before the crash must still be there.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

_STARTUP_TIMEOUT_S = 60.0
_STOP_TIMEOUT_S = 10.0
# MLflow 3 phones home with usage telemetry unless told not to; tests reach 127.0.0.1 only.
QUIET_ENV = {"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"}
# Job execution (on by default with a SQL store) adds huey consumer processes that the tracking
# API never needs, and a temp folder in /dev/shm per start that nothing removes.
_SERVER_ENV = {**QUIET_ENV, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
# Proxy variables would send the health probe (and MlflowClient) elsewhere than loopback.
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class MlflowServer:
    """``mlflow server`` with a sqlite backend store and proxied artifacts, both under ``root``."""

    def __init__(self, root: Path, port: int | None = None) -> None:
        self.root = root
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = root / "mlflow-server.log"
        self._proc: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        mlflow = Path(sys.executable).with_name("mlflow")
        return [
            str(mlflow), "server",
            "--backend-store-uri", f"sqlite:///{self.root / 'mlflow.db'}",
            "--artifacts-destination", str(self.root / "artifacts"),
            "--serve-artifacts",
            "--host", "127.0.0.1", "--port", str(self.port),
            "--workers", "1",  # the default is 4 uvicorn workers: too much for a 2-core test machine
        ]

    def start(self) -> str:
        self.root.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")  # a file, not a pipe: nobody reads a pipe, and a full one blocks the server
        try:
            # Its own session, so stop() and kill() reach the uvicorn workers that mlflow spawns too.
            self._proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                          env={**os.environ, **_SERVER_ENV}, start_new_session=True)
        finally:
            log.close()
        self._wait_healthy()
        return self.url

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + _STARTUP_TIMEOUT_S
        while time.monotonic() < deadline:
            assert self._proc
            if self._proc.poll() is not None:
                raise RuntimeError(f"mlflow server exited with {self._proc.returncode}:\n{self._log_tail()}")
            try:
                with _NO_PROXY.open(f"{self.url}/health", timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.2)
        self.kill()
        raise RuntimeError(f"mlflow server not healthy after {_STARTUP_TIMEOUT_S:.0f} s:\n{self._log_tail()}")

    def _log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def _signal_group(self, sig: signal.Signals) -> None:
        if self._proc:
            try:
                os.killpg(self._proc.pid, sig)
            except ProcessLookupError:  # the whole group is gone already
                pass

    def stop(self) -> None:
        """Terminate the server and its workers; SIGKILL whatever is left after a grace period."""
        if not self._proc:
            return
        self._signal_group(signal.SIGTERM)
        try:
            self._proc.wait(_STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            pass
        # Even once the leader is gone, a worker may linger, still holding the port.
        self.kill()

    def kill(self) -> None:
        """SIGKILL the whole process group: a crash, with no chance to flush or clean up."""
        if not self._proc:
            return
        self._signal_group(signal.SIGKILL)
        self._proc.wait()
        self._proc = None

    def restart(self) -> str:
        """Start again on the same port, database and artifacts, whether stopped, crashed or running."""
        self.stop()
        return self.start()

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def __enter__(self) -> MlflowServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
