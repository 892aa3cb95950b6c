"""Endpoints for the benchmarks, each in its own process on 127.0.0.1: the recording metrics fake
(tests/metrics_fake.py) and a moto server for the control calls."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Iterator

ROOT = Path(__file__).resolve().parent.parent
FAKE_ENV = {
    "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true", "AWS_CONFIG_FILE": "/nonexistent", "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
}
os.environ.update(FAKE_ENV)
#: The endpoints stand in for AWS, whose CPU is not on the training machine: they run at a lower
#: priority so that on a small machine they take as little as possible from the contender measured.
ENDPOINT_NICENESS = 10


@contextlib.contextmanager
def metrics_fake(latency_ms: float = 0.0) -> Iterator[str]:
    """The fake metrics endpoint in its own process, so that its CPU is not ours."""
    process = subprocess.Popen([sys.executable, str(ROOT / "tests" / "metrics_fake.py"), "--latency-ms", str(latency_ms)],
                               stdout=subprocess.PIPE, text=True)
    os.setpriority(os.PRIO_PROCESS, process.pid, ENDPOINT_NICENESS)
    try:
        assert process.stdout is not None
        yield process.stdout.readline().strip()
    finally:
        process.terminate()
        process.wait(10)


@contextlib.contextmanager
def moto_server() -> Iterator[str]:
    # Its log goes to a file: a pipe nobody reads fills after a few hundred requests, and then the
    # server hangs in its next log write (the 100-runs rows found this as read timeouts).
    with tempfile.TemporaryFile("w+") as log:
        process = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", "0"],
                                   stdout=subprocess.DEVNULL, stderr=log, text=True)
        os.setpriority(os.PRIO_PROCESS, process.pid, ENDPOINT_NICENESS)
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                log.seek(0)
                for line in log.read().splitlines():
                    if "Running on http://" in line:
                        yield line.split("Running on ")[1].split()[0].rstrip("/")
                        return
                time.sleep(0.05)
            raise RuntimeError("the moto server did not start within 30 s")
        finally:
            process.terminate()
            process.wait(10)


def moto_reset(url: str) -> None:
    """Forget every resource: moto's searches grow with what it holds, and rows must not pay for
    the rows before them."""
    urllib.request.urlopen(urllib.request.Request(f"{url}/moto-api/reset", method="POST"), timeout=10).close()


def fake_stats(url: str) -> dict:
    with urllib.request.urlopen(f"{url}/_fake/stats", timeout=10) as response:
        return json.loads(response.read())


def fake_reset(url: str) -> None:
    urllib.request.urlopen(urllib.request.Request(f"{url}/_fake/reset", method="POST"), timeout=10).close()
