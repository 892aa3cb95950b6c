"""Retries that do not stall a run, a budget that bounds an outage's traffic, one summary at close."""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections import Counter

import anyio

import sagerun
import sagerun.sync
from sagerun.store import Spool


async def test_a_batch_waiting_for_its_retry_lets_the_others_go_first(session, metrics_fake):
    # One request at a time, and the first one fails: it waits for its retry without the slot.
    metrics_fake.configure(fail_next={"500": 1})
    one = dataclasses.replace(session, max_in_flight=1, initial_in_flight=1, sender="inline")
    async with sagerun.Run("exp", "patient", session=one) as run:
        for step in range(100):
            await run.log_metric("loss", float(step), step=step)
    steps = [p["step"] for p in metrics_fake.points]
    assert sorted(steps) == list(range(100))
    assert steps[:10] != list(range(10)), "the failed first batch was sent again before the others"
    assert run.ingest_stats.retried == 1


async def test_an_outage_does_not_multiply_traffic(session, metrics_fake):
    metrics_fake.configure(down=True)
    patient = dataclasses.replace(session, retry_deadline=30.0, sender="inline")
    async with sagerun.Run("exp", "outage", session=patient) as run:
        for step in range(200):  # 20 requests' worth
            await run.log_metric("loss", float(step), step=step)
        await anyio.sleep(2.0)
        during = metrics_fake.requests
        metrics_fake.configure(down=False)
    # Unbudgeted, 20 batches retrying every 10-50 ms for 2 s send well over 1,000 requests. The
    # budget lets the first attempts and its reserve go, then a probe each retry_max_backoff (0.05 s
    # here); aiohttp sends a request again once when a kept-alive connection is reset (the fake's
    # notes), so each attempt may arrive twice.
    assert during <= 2 * (20 + 100 + 2.0 / session.retry_max_backoff) + 20, during
    assert Counter(p["step"] for p in metrics_fake.points) == Counter(range(200))  # then all delivered
    assert run.ingest_stats.delivered == 200


async def test_a_run_ends_with_one_summary_of_what_was_not_delivered(session, metrics_fake, tmp_path, caplog):
    metrics_fake.configure(item_error_rates={"VALIDATION_ERROR": 0.2}, seed=3)
    store = str(tmp_path / "store")
    quick = dataclasses.replace(session, store=store, retry_deadline=0.5)
    with caplog.at_level(logging.WARNING, logger="sagerun"):
        async with sagerun.Run("exp", "summary", session=quick) as run:
            for step in range(200):
                await run.log_metric("loss", float(step), step=step)
            await run.flush()
            metrics_fake.configure(down=True)  # the rest cannot be delivered
            for step in range(200, 300):
                await run.log_metric("loss", float(step), step=step)
    refused = 200 - len(metrics_fake.points)
    assert 0 < refused < 200
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1, warnings  # one summary, not one warning per batch
    assert f"{len(metrics_fake.points)} points delivered, {100 + refused} failed, kept in the spool of {store}" \
        in warnings[0]
    assert f"{refused} refused with VALIDATION_ERROR" in warnings[0]
    assert f"`sagerun sync --store {store}` sends them (with --retry-refused" in warnings[0]
    with Spool(store) as spool:
        assert spool.count() == 100 and spool.refused() == {"VALIDATION_ERROR": refused}


def test_a_faulty_endpoint_gets_every_point_before_close(session, metrics_fake):
    # The scenario: 4 threads of the sync facade, 30% of requests answered 500 and 20%
    # throttled at random, 20 ms each. Throttling that does not follow the rate must not slow the
    # run: before, close gave up at close_timeout with two thirds of the points spooled.
    metrics_fake.configure(latency_ms=20, error_500_rate=0.3, throttle_rate=0.2, seed=1)
    defaults = dataclasses.replace(sagerun.Session(), region=session.region, endpoint_url=session.endpoint_url,
                                   metrics_endpoint_url=session.metrics_endpoint_url, close_timeout=10.0)

    def log(run, thread: int) -> None:
        for step in range(2_500):
            run.log_metric(f"loss-{thread}", float(step), step=step)

    with sagerun.sync.Run("exp", "faulty", session=defaults) as run:
        threads = [threading.Thread(target=log, args=(run, t)) for t in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert Counter((p["name"], p["step"]) for p in metrics_fake.points).keys() == \
        {(f"loss-{t}", s) for t in range(4) for s in range(2_500)}
    assert run.ingest_stats.delivered == 10_000 and run.ingest_stats.failed == 0


def test_a_quota_is_kept_to_once_it_is_found(session, metrics_fake):
    # An account quota of 50 requests a second at 20 ms: a single request in flight already sends
    # 50 a second, so only a send rate, not an in-flight limit, can keep under it.
    metrics_fake.configure(latency_ms=20, rate_limit=50)
    paced = dataclasses.replace(session, retry_deadline=60.0, close_timeout=30.0)
    with sagerun.sync.Run("exp", "quota", session=paced) as run:
        # 320 requests' worth: enough to be sending throughout the 4.5 s below, at 50 a second; the
        # 3 s window makes one request more or less 0.33/s of the rate, not 0.5/s
        run.log_metrics({"loss": [float(i) for i in range(3_200)]}, step=0)
        time.sleep(1.5)  # past the first throttles
        before, t0 = metrics_fake.stats, time.monotonic()
        time.sleep(3.0)
        after, t1 = metrics_fake.stats, time.monotonic()
        rate = run.ingest_stats.send_rate
    requests = after["requests"] - before["requests"]
    throttled = after["faults"].get("rate_limited", 0) - before["faults"].get("rate_limited", 0)
    assert (requests - throttled) / (t1 - t0) >= 0.9 * 50, (requests, throttled)
    assert throttled <= 0.1 * requests, (requests, throttled)
    assert rate is not None and 30 < rate < 80, rate
    assert sorted(p["value"] for p in metrics_fake.points) == [float(i) for i in range(3_200)]
