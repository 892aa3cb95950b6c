"""Retries that do not stall a run, a budget that bounds an outage's traffic, one summary at close."""

from __future__ import annotations

import dataclasses
import logging
from collections import Counter

import anyio

import sagerun
from sagerun.store import Spool


async def test_a_batch_waiting_for_its_retry_lets_the_others_go_first(session, metrics_fake):
    # One request at a time, and the first one fails: it waits for its retry without the slot.
    metrics_fake.configure(fail_next={"500": 1})
    one = dataclasses.replace(session, max_in_flight=1, initial_in_flight=1, min_in_flight=1, sender="inline")
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
