"""The spool: points SageMaker did not take are kept, and ``sagerun sync`` delivers each exactly once to
the recording fake of the metrics endpoint (control calls go to moto)."""

from __future__ import annotations

import collections
import dataclasses
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest

import sagerun
from metrics_fake import MetricsFake
from sagerun.store import Spool, spool_dead_letter
from sagerun._upload import UploadReport, upload_store
from test_cli import run_cli

TC = "exp-run"


def points(count: int, name: str = "loss", start: float | None = None) -> list[tuple[str, float, int, float]]:
    start = time.time() - 60 if start is None else start
    return [(name, i / 8, i, start + i) for i in range(count)]


def received(fake: MetricsFake) -> collections.Counter[tuple[Any, ...]]:
    return collections.Counter((p["trial_component"], p["name"], p["value"], p["step"], p["timestamp"])
                               for p in fake.points)


def sent(trial_component: str, spooled: list[tuple[str, float, int, float]]) -> collections.Counter[tuple[Any, ...]]:
    return collections.Counter((trial_component, n, v, s, t) for n, v, s, t in spooled)


@pytest.fixture
def store(tmp_path: Path) -> str:
    return str(tmp_path / "store")


@pytest.fixture
def synced(session: sagerun.Session, store: str) -> sagerun.Session:
    """The test session, reading and writing the spool of ``store``."""
    return dataclasses.replace(session, store=store)


def test_points_added_are_pending_grouped_by_trial_component(store: str) -> None:
    with Spool(store) as spool:
        spool.add("exp-b", points(3, "acc"), "endpoint down")
        spool.add("exp-a", points(2), "throttled")
        spool.add("exp-b", points(1, "loss"), "endpoint down")
        assert spool.count() == 6
        batches = spool.pending(100)
        assert [(b.trial_component_name, [p[0] for p in b.points]) for b in batches] == [
            ("exp-a", ["loss", "loss"]), ("exp-b", ["acc", "acc", "acc", "loss"])]
        assert batches[0].points == points(2, start=batches[0].points[0][3])
        assert [len(b.ids) for b in spool.pending(3)] == [2, 1]
        spool.remove(batches[0].ids)
        spool.mark_refused(batches[1].ids[:1], "VALIDATION_ERROR")
        assert spool.count() == 3 and spool.refused() == {"VALIDATION_ERROR": 1}
        assert [len(b.ids) for b in spool.pending(100)] == [3]
        assert spool.release_refused() == 1 and spool.count() == 4
        with pytest.raises(ValueError, match="limit must be a positive integer"):
            spool.pending(0)


def test_the_spool_takes_points_from_many_threads(store: str) -> None:
    with Spool(store) as spool:
        threads = [threading.Thread(target=lambda i=i: [spool.add(f"exp-{i}", points(10), "x") for _ in range(20)])
                   for i in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert spool.count() == 8 * 20 * 10


def test_the_dead_letter_hook_spools_and_leaves_the_telling_to_the_close_summary(
        store: str, caplog: pytest.LogCaptureFixture) -> None:
    hook = spool_dead_letter(sagerun.Session(store=store))
    assert not os.path.exists(store)  # nothing is created before a point fails
    with caplog.at_level(logging.WARNING, logger="sagerun"):
        hook(TC, points(4), "endpoint down")
    assert not caplog.records  # one warning per batch of 10 was too many: the run's close says it once
    with Spool(store) as spool:
        assert spool.count() == 4


async def test_sync_delivers_each_point_once_and_empties_the_spool(
        synced: sagerun.Session, metrics_fake: MetricsFake) -> None:
    spooled = {TC: points(25) + points(5, "acc"), "exp-other": points(7)}
    with Spool(synced.store_path) as spool:
        for tc, pts in spooled.items():
            spool.add(tc, pts, "endpoint down")
    report = await upload_store(synced)
    assert report == UploadReport(delivered=37)
    assert received(metrics_fake) == sent(TC, spooled[TC]) + sent("exp-other", spooled["exp-other"])
    assert metrics_fake.violations == [] and metrics_fake.requests == 4  # 10 points a request, per run: 3 + 1

    again = await upload_store(synced)
    assert again.delivered == 0 and metrics_fake.requests == 4
    with Spool(synced.store_path) as spool:
        assert spool.count() == 0


async def test_a_down_endpoint_leaves_the_points_in_the_spool(
        synced: sagerun.Session, metrics_fake: MetricsFake) -> None:
    spooled = points(30)
    with Spool(synced.store_path) as spool:
        spool.add(TC, spooled, "endpoint down")
    metrics_fake.configure(down=True)
    report = await upload_store(dataclasses.replace(synced, retry_deadline=0.3))
    assert report.error and report.pending == 30 and report.delivered == 0
    assert metrics_fake.points == []

    metrics_fake.configure(down=False)
    assert (await upload_store(synced)).delivered == 30
    assert received(metrics_fake) == sent(TC, spooled)


async def test_refused_points_are_set_aside_not_deleted(synced: sagerun.Session, metrics_fake: MetricsFake) -> None:
    spooled = points(12)
    with Spool(synced.store_path) as spool:
        spool.add(TC, spooled, "endpoint down")
    metrics_fake.configure(item_error_rates={"METRIC_LIMIT_EXCEEDED": 1.0})
    report = await upload_store(synced)
    assert report.error is None and report.delivered == 0 and report.pending == 0
    assert report.refused == report.set_aside == {"METRIC_LIMIT_EXCEEDED": 12}
    assert (await upload_store(synced)).delivered == 0  # set aside: not sent again by a plain sync

    metrics_fake.configure(item_error_rates={})
    report = await upload_store(synced, retry_refused=True)
    assert report.delivered == 12 and report.set_aside == {}
    assert received(metrics_fake) == sent(TC, spooled)


async def test_transient_item_errors_are_retried_until_every_point_is_in(
        synced: sagerun.Session, metrics_fake: MetricsFake) -> None:
    spooled = points(200)
    with Spool(synced.store_path) as spool:
        spool.add(TC, spooled, "endpoint down")
    metrics_fake.configure(seed=3, item_error_rates={"CONFLICT_ERROR": 0.3}, fail_next={"503": 2, "throttle": 2})
    report = await upload_store(synced, concurrency=4)
    assert report.delivered == 200 and report.error is None
    assert received(metrics_fake) == sent(TC, spooled)


async def test_points_a_run_could_not_deliver_reach_sagemaker_through_the_spool(
        synced: sagerun.Session, metrics_fake: MetricsFake) -> None:
    metrics_fake.configure(down=True)
    hurried = dataclasses.replace(synced, retry_deadline=0.3, close_timeout=2.0)
    async with sagerun.Run("exp", "run", session=hurried, dead_letter=spool_dead_letter(hurried)) as run:
        await run.log_metrics({"loss": np.linspace(1, 0, 50)}, step=np.arange(50))
    assert run.ingest_stats.failed == 50
    with Spool(synced.store_path) as spool:
        assert spool.count() == 50

    metrics_fake.configure(down=False)
    report = await upload_store(synced)
    assert report.delivered == 50
    assert sorted((p["step"], p["value"]) for p in metrics_fake.points) == list(
        zip(range(50), np.linspace(1, 0, 50).tolist()))


async def test_a_local_run_is_pushed_once(synced: sagerun.Session, metrics_fake: MetricsFake, sagemaker: Any) -> None:
    local = sagerun.Session(backend="local", store=synced.store_path)
    async with sagerun.Run("exp", "offline", session=local) as run:
        run.log_parameters({"lr": 0.1, "optimizer": "sgd"})
        await run.log_metrics({"loss": np.array([3.0, 2.0, 1.0])}, step=np.arange(3))
    report = await upload_store(synced, runs=["exp/offline"])
    assert report.pushed == {"exp/offline": 3} and report.delivered == 3
    described = sagemaker.describe_trial_component(TrialComponentName="exp-offline")
    assert described["Status"]["PrimaryStatus"] == "Completed"
    assert described["Parameters"] == {"lr": {"NumberValue": 0.1}, "optimizer": {"StringValue": "sgd"}}
    assert sorted((p["trial_component"], p["step"], p["value"]) for p in metrics_fake.points) == [
        ("exp-offline", 0, 3.0), ("exp-offline", 1, 2.0), ("exp-offline", 2, 1.0)]

    async with sagerun.Run("exp", "offline", session=local) as run:  # resumed offline
        await run.log_metric("loss", 0.5, step=3)
    report = await upload_store(synced, all_local=True)
    assert report.pushed == {"exp/offline": 1} and report.delivered == 1
    assert len(metrics_fake.points) == 4


def test_sagerun_sync_command_against_aws_endpoints(
        store: str, moto_url: str, metrics_fake: MetricsFake) -> None:
    spooled = points(23)
    with Spool(store) as spool:
        spool.add(TC, spooled, "endpoint down")
    env = {"AWS_ENDPOINT_URL": moto_url, "AWS_ENDPOINT_URL_SAGEMAKER_METRICS": metrics_fake.url,
           "SAGERUN_RETRY_DEADLINE": "5"}
    out = run_cli("sync", "--store", store, env=env)
    assert out.stdout == "delivered 23 points to SageMaker\n"
    assert received(metrics_fake) == sent(TC, spooled)
    assert run_cli("sync", "--store", store, env=env).stdout == "nothing to sync: no points are waiting in the spool\n"

    with Spool(store) as spool:
        spool.add(TC, spooled, "endpoint down")
    metrics_fake.configure(down=True)
    failed = run_cli("sync", "--store", store, "--deadline", "0.2", env=env, status=1)
    assert failed.stdout == ""
    assert failed.stderr.startswith("Error: sync stopped, 23 points kept in the spool for the next `sagerun sync`")
    assert "Traceback" not in failed.stderr

    metrics_fake.configure(down=False)
    report = orjson.loads(run_cli("sync", "--store", store, "--json", env=env).stdout)
    assert (report["delivered"], report["pending"], report["error"]) == (23, 0, None)
