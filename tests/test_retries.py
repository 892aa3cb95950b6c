"""Retries that do not stall a run: faults and throttling at once, from several threads."""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections import Counter

import sagerun
import sagerun.sync as sync
from sagerun.store import Spool


def received(fake):
    return Counter((p["trial_component"], p["name"], p["step"], p["value"]) for p in fake.points)


def test_faults_and_throttling_from_four_threads_are_all_delivered_within_close_timeout(session, metrics_fake, tmp_path):
    # 30% of requests answered 500 and 20% throttled, 20 ms each: 2,000 good requests are seconds of work.
    metrics_fake.configure(latency_ms=20, error_500_rate=0.3, throttle_rate=0.2, seed=7)
    session = dataclasses.replace(session, close_timeout=10.0, store=str(tmp_path / "store"))
    per_thread = 5_000

    def log(run, thread):
        for step in range(per_thread):
            run.log_metric(f"loss-{thread}", float(step), step=step)

    with sync.Run("exp", "stormy", session=session) as run:
        threads = [threading.Thread(target=log, args=(run, t)) for t in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    stats = run.ingest_stats
    expected = Counter(("exp-stormy", f"loss-{t}", s, float(s)) for t in range(4) for s in range(per_thread))
    assert received(metrics_fake) - expected == Counter()  # nothing the run did not log
    assert set(received(metrics_fake)) == set(expected), f"{len(set(expected) - set(received(metrics_fake)))} missing"
    assert (stats.delivered, stats.failed, stats.dropped) == (20_000, 0, 0), stats


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
