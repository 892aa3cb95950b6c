"""The ``spill`` full-queue policy (the default): a queue that fills faster than the endpoint takes
points goes to disk instead of holding up the training loop, and every point still arrives.

What is asserted is what a user sees: the points the recording fake received, the run's
``ingest_stats``, the files in the store folder, the spool and what ``sagerun sync`` delivers.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path

import pytest

import sagerun
import sagerun.sync
from sagerun._upload import upload_store
from sagerun.store import Spool

CAPACITY = 2_000
POINTS = 30_000


def journal_files(store: Path) -> list[Path]:
    return sorted((store / "journal").glob("*.frames"))


def received(fake) -> Counter:
    return Counter((p["step"], p["value"]) for p in fake.points if p["name"] == "loss")


def expected(count: int) -> Counter:
    return Counter((step, step / 7) for step in range(count))


@pytest.fixture
def spilling(session: sagerun.Session, tmp_path: Path) -> sagerun.Session:
    return dataclasses.replace(session, store=str(tmp_path), queue_capacity=CAPACITY)


@pytest.mark.parametrize("sender", ["process", "inline"])
def test_a_full_queue_spills_to_disk_and_every_point_arrives_once(spilling, metrics_fake, tmp_path, sender):
    metrics_fake.configure(latency_ms=50)  # ~13,000 points/s at most: the loop outruns it
    assert sagerun.Session().full_policy == "spill"
    with sagerun.sync.Run("exp", f"spill-{sender}", session=dataclasses.replace(spilling, sender=sender)) as run:
        for step in range(POINTS):
            run.log_metric("loss", step / 7, step=step)
        behind = run.ingest_stats
        on_disk = journal_files(tmp_path)
    # Right after the loop far more points wait than the queue holds: the rest are on disk.
    assert behind.enqueued == POINTS and behind.dropped == 0
    assert behind.enqueued - behind.delivered > 4 * CAPACITY  # more than the queue and the batches on their way
    assert on_disk, "nothing was spilled to the store's journal folder"
    assert received(metrics_fake) == expected(POINTS)
    stats = run.ingest_stats
    assert (stats.delivered, stats.failed, stats.dropped, stats.queued) == (POINTS, 0, 0, 0)
    assert journal_files(tmp_path) == []  # a run that closed leaves no journal behind
    assert metrics_fake.violations == []


@pytest.mark.parametrize("sender", ["process", "inline"])
async def test_spilled_points_end_in_the_spool_when_the_endpoint_is_down_and_sync_sends_them(
        spilling, metrics_fake, tmp_path, sender, caplog):
    metrics_fake.configure(down=True)
    down = dataclasses.replace(spilling, sender=sender, close_timeout=1.0, retry_deadline=0.5)
    started = time.monotonic()
    with sagerun.sync.Run("exp", f"spill-down-{sender}", session=down) as run:
        for step in range(POINTS):
            run.log_metric("loss", step / 7, step=step)
    assert time.monotonic() - started < 20  # close_timeout, the sender's grace, and moving the rest
    stats = run.ingest_stats
    assert (stats.enqueued, stats.delivered, stats.failed, stats.dropped) == (POINTS, 0, POINTS, 0)
    with Spool(str(tmp_path)) as spool:
        assert spool.count() == POINTS
    assert journal_files(tmp_path) == []
    summary = [r.getMessage() for r in caplog.records if "closed with" in r.getMessage()]
    assert len(summary) == 1 and f"{POINTS:,} failed, kept in the spool of {tmp_path}" in summary[0]

    metrics_fake.configure(down=False)
    report = await upload_store(spilling)
    assert report.delivered == POINTS and report.error is None
    assert received(metrics_fake) == expected(POINTS)


KILLED = textwrap.dedent("""
    import sys, time
    import sagerun, sagerun.sync
    session = sagerun.Session(queue_capacity=1_000, sender="inline")
    with sagerun.sync.Run("exp", "killed-while-spilling", session=session) as run:
        for step in range(20_000):
            run.log_metric("loss", step / 7, step=step)
        while not run.ingest_stats.queued or run.ingest_stats.queued <= 1_000:
            time.sleep(0.01)  # the backlog is beyond the queue: on disk
        print("spilled", flush=True)
        time.sleep(60)
""")


def test_sync_takes_what_a_killed_run_had_spilled(moto_url, metrics_fake, tmp_path, session):
    metrics_fake.configure(latency_ms=500)
    env = {**os.environ, "AWS_ENDPOINT_URL": moto_url, "AWS_ENDPOINT_URL_SAGEMAKER_METRICS": metrics_fake.url,
           "SAGERUN_HOME": str(tmp_path), "AWS_DEFAULT_REGION": "us-east-1"}
    child = subprocess.Popen([sys.executable, "-c", KILLED], env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "spilled"
        assert journal_files(tmp_path)
        child.send_signal(signal.SIGKILL)
    finally:
        child.wait(30)
    metrics_fake.configure(latency_ms=0)
    before = received(metrics_fake)

    result = subprocess.run([sys.executable, "-m", "sagerun", "sync", "--store", str(tmp_path)], env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    taken = int(result.stdout.split("took ")[1].split(" points spilled")[0].replace(",", ""))
    assert taken > 1_000
    arrived = received(metrics_fake)
    assert max(arrived.values()) == 1  # nothing sent twice
    assert journal_files(tmp_path) == []
    # What was on disk went there in the order it was logged: one unbroken stretch of steps.
    steps = sorted(step for step, _ in arrived - before)
    assert len(steps) == taken and steps == list(range(steps[0], steps[0] + taken))
