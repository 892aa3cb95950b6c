"""The sender process: a SageMaker run's metrics are sent from a child process, not the training one.

Processes are observed through /proc, as a user would with ps; nothing of sagerun is patched.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path

import anyio
import pytest

import sagerun

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")


def senders() -> list[int]:
    """Pids of this process's children that are sagerun sender processes."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            command = (entry / "cmdline").read_bytes().split(b"\0")
        except (OSError, IndexError, ValueError):
            continue
        if parent == os.getpid() and b"sagerun._ingest.sender" in command:
            found.append(int(entry.name))
    return found


def received(fake, name: str = "loss") -> Counter:
    return Counter((p["step"], p["value"]) for p in fake.points if p["name"] == name)


async def test_metrics_go_out_from_a_sender_process_that_ends_with_the_run(session, metrics_fake):
    async with sagerun.Run("exp", "sent-aside", session=session) as run:
        assert len(senders()) == 1
        for step in range(3_000):
            await run.log_metric("loss", step / 7, step=step)
            if step % 100 == 0:
                await anyio.sleep(0.05)  # a run of a few seconds: the sender is up and sending
    assert senders() == []
    assert received(metrics_fake) == Counter((step, step / 7) for step in range(3_000))
    assert metrics_fake.violations == []
    stats = run.ingest_stats
    assert (stats.enqueued, stats.delivered, stats.failed, stats.queued, stats.in_flight) == (3_000, 3_000, 0, 0, 0)


async def test_a_run_that_closes_before_its_sender_is_up_sends_from_the_run(session, metrics_fake):
    async with sagerun.Run("exp", "short", session=session) as run:
        for step in range(25):
            await run.log_metric("loss", step / 7, step=step)
    assert senders() == []
    assert received(metrics_fake) == Counter((step, step / 7) for step in range(25))
    assert (run.ingest_stats.delivered, run.ingest_stats.failed) == (25, 0)


async def test_inline_sender_starts_no_process(session, metrics_fake):
    async with sagerun.Run("exp", "inline", session=dataclasses.replace(session, sender="inline")) as run:
        assert senders() == []
        for step in range(100):
            await run.log_metric("loss", step / 7, step=step)
    assert sum(received(metrics_fake).values()) == 100


async def test_retry_counts_and_refusals_come_back_from_the_sender(session, metrics_fake, tmp_path):
    metrics_fake.configure(throttle_rate=0.3, item_error_rates={"VALIDATION_ERROR": 0.02}, seed=3)
    kept: list[tuple] = []
    async with sagerun.Run("exp", "faulty", session=session,
                           dead_letter=lambda name, points, reason: kept.extend(points)) as run:
        for step in range(2_000):
            await run.log_metric("loss", step / 7, step=step)
        await run.flush()
        flushed = run.ingest_stats
    assert flushed.queued == 0 and flushed.in_flight == 0
    assert flushed.retried > 0 and flushed.failed == len(kept) > 0
    assert flushed.delivered + flushed.failed == 2_000
    assert sum(received(metrics_fake).values()) == flushed.delivered
    assert Counter((p[2], p[1]) for p in kept) + received(metrics_fake) == Counter(
        (step, step / 7) for step in range(2_000))


async def test_a_killed_sender_is_counted_and_the_run_sends_the_rest_itself(session, metrics_fake, caplog):
    metrics_fake.configure(latency_ms=100)  # slow: the sender holds points when it is killed
    with caplog.at_level(logging.ERROR, logger="sagerun"):
        async with sagerun.Run("exp", "orphaned", session=session) as run:
            for step in range(2_000):
                await run.log_metric("loss", step / 7, step=step)
            while run.ingest_stats.queued:  # all handed over
                await anyio.sleep(0.01)
            (pid,) = senders()
            os.kill(pid, signal.SIGKILL)
            await anyio.sleep(0.5)
            for step in range(2_000, 2_500):
                await run.log_metric("loss", step / 7, step=step)
    stats = run.ingest_stats
    assert stats.failed > 0  # what the sender held is counted, not silently gone
    assert stats.delivered + stats.failed == stats.enqueued == 2_500
    arrived = received(metrics_fake)
    assert all(arrived[(step, step / 7)] == 1 for step in range(2_000, 2_500))  # sent from the run itself
    # Points the sender sent after its last report arrived, yet are counted failed: a killed
    # process cannot say which of its last points got out, so the count errs on the side of failed.
    assert stats.delivered <= sum(arrived.values()) <= stats.delivered + stats.failed
    assert max(arrived.values()) == 1
    assert any("sender process" in r.getMessage() and "failed" in r.getMessage() for r in caplog.records)


TRAINING = textwrap.dedent("""
    import time
    import sagerun.sync as sr

    with sr.Run("exp", "parent-killed", session=sr.Session(linger=0.01)) as run:
        for step in range(3_000):
            run.log_metric("loss", step / 3, step=step)
        while run.ingest_stats.queued:  # handed to the sender process, not yet delivered
            time.sleep(0.01)
        print("handed over", run.ingest_stats.delivered, flush=True)
        time.sleep(60)
""")


def test_points_handed_to_the_sender_are_delivered_after_the_training_process_is_killed(
        moto_url, metrics_fake, tmp_path):
    metrics_fake.configure(latency_ms=100)  # slow: most points are undelivered at the kill
    env = {**os.environ, "AWS_ENDPOINT_URL": moto_url, "AWS_ENDPOINT_URL_SAGEMAKER_METRICS": metrics_fake.url,
           "SAGERUN_HOME": str(tmp_path)}
    child = subprocess.Popen([sys.executable, "-c", TRAINING], env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        line = child.stdout.readline().split()
        assert line[:2] == ["handed", "over"] and int(line[2]) < 3_000
        child.send_signal(signal.SIGKILL)
    finally:
        child.wait(30)
    deadline = time.monotonic() + 30
    while sum(received(metrics_fake).values()) < 3_000 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert received(metrics_fake) == Counter((step, step / 3) for step in range(3_000))
