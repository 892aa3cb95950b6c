"""What reaches the metrics endpoint: every point once, in batches the API accepts, through faults."""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections import Counter

import anyio
import numpy as np
import pytest

import sagerun


@pytest.fixture(params=["process", "inline"])
def session(request: pytest.FixtureRequest, session: sagerun.Session) -> sagerun.Session:
    """Every engine behaviour holds whether the points are sent from a sender process or inline."""
    return dataclasses.replace(session, sender=request.param)


def received(fake) -> Counter:
    return Counter((p["name"], p["step"], p["value"]) for p in fake.points)


async def log_range(run, count: int, name: str = "loss") -> Counter:
    for step in range(count):
        await run.log_metric(name, step / 7, step=step)
    return Counter((name, step, step / 7) for step in range(count))


async def test_every_point_arrives_once_in_batches_of_at_most_ten(session, metrics_fake):
    async with sagerun.Run("exp", "many", session=session) as run:
        logged = await log_range(run, 2_345)
        logged += await log_range(run, 101, name="acc")
    assert received(metrics_fake) == logged
    assert metrics_fake.violations == []
    assert metrics_fake.requests >= math.ceil(2_446 / 10)
    stats = run.ingest_stats
    assert (stats.enqueued, stats.delivered, stats.failed, stats.dropped, stats.queued) == (2_446, 2_446, 0, 0, 0)


async def test_timestamp_is_taken_at_the_call(session, metrics_fake):
    async with sagerun.Run("exp", "clock", session=session) as run:
        before = time.time()
        await run.log_metric("loss", 1.0, step=0)
        after = time.time()
        await anyio.sleep(1.2)  # the point is sent later; its time must not be the send time
    [point] = metrics_fake.points
    assert math.floor(before) <= point["timestamp"] <= after  # botocore 1.40 sends whole seconds


@pytest.mark.parametrize("fault", ["throttle", "500", "503", "reset"])
async def test_transient_faults_are_retried_until_delivered(session, metrics_fake, fault):
    metrics_fake.configure(fail_next={fault: 6})
    async with sagerun.Run("exp", f"fault-{fault}", session=session) as run:
        logged = await log_range(run, 200)
    assert received(metrics_fake) == logged
    assert metrics_fake.stats["faults"][fault] == 6
    # aiohttp resends a request once by itself when a reused connection is reset, so some resets
    # never reach sagerun's retry policy; every other fault does.
    assert run.ingest_stats.retried >= (0 if fault == "reset" else 6)
    assert run.ingest_stats.failed == 0


async def test_random_throttling_and_errors_lose_nothing_and_cut_the_in_flight_limit(session, metrics_fake):
    metrics_fake.configure(throttle_rate=0.3, error_500_rate=0.1, seed=3)
    async with sagerun.Run("exp", "stormy", session=session) as run:
        logged = await log_range(run, 1_000)
        await run.flush()
        assert run.ingest_stats.in_flight_limit < session.max_in_flight
    assert received(metrics_fake) == logged
    assert metrics_fake.stats["faults"].get("throttle", 0) > 0


async def test_transient_item_errors_are_retried_and_others_dead_lettered(session, metrics_fake):
    dead: list[tuple[str, list, str]] = []
    metrics_fake.configure(item_error_rates={"INTERNAL_ERROR": 0.2, "VALIDATION_ERROR": 0.05}, seed=11)
    async with sagerun.Run("exp", "items", session=session,
                           dead_letter=lambda tc, points, why: dead.append((tc, list(points), why))) as run:
        logged = await log_range(run, 500)
    refused = Counter((p[0], p[2], p[1]) for _, points, _ in dead for p in points)
    assert refused, "the seed should refuse a few points"
    assert all(tc == "exp-items" and "VALIDATION_ERROR" in why for tc, _, why in dead)
    assert received(metrics_fake) + refused == logged
    assert run.ingest_stats.failed == sum(refused.values())
    assert run.ingest_stats.delivered == sum(received(metrics_fake).values())


async def test_close_with_the_endpoint_down_returns_in_time_and_hands_over_every_point(session, metrics_fake, caplog):
    dead: list = []
    metrics_fake.configure(down=True)
    quick = sagerun.Session(**{**session.__dict__, "close_timeout": 1.0, "retry_deadline": 30.0})
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="sagerun"):
        async with sagerun.Run("exp", "down", session=quick,
                               dead_letter=lambda tc, points, why: dead.extend(points)) as run:
            logged = await log_range(run, 300)
    assert time.monotonic() - started < 8
    assert Counter((p[0], p[2], p[1]) for p in dead) == logged
    assert run.ingest_stats.failed == 300
    assert "300 failed" in caplog.text


async def test_endpoint_down_then_back_loses_nothing(session, metrics_fake):
    metrics_fake.configure(down=True)
    async with sagerun.Run("exp", "flaky", session=session) as run:
        logged = await log_range(run, 120)
        await anyio.sleep(0.5)
        metrics_fake.configure(down=False)
    assert received(metrics_fake) == logged


async def test_nan_and_infinities_are_counted_not_sent(session, metrics_fake, caplog):
    with caplog.at_level(logging.WARNING, logger="sagerun"):
        async with sagerun.Run("exp", "nan", session=session) as run:
            await run.log_metric("loss", float("nan"), step=0)
            await run.log_metric("loss", float("inf"), step=1)
            await run.log_metric("loss", 0.5, step=2)
            await run.log_metrics({"acc": np.array([0.1, np.nan, 0.3])}, step=np.arange(3))
    assert received(metrics_fake) == Counter({("loss", 2, 0.5): 1, ("acc", 0, 0.1): 1, ("acc", 2, 0.3): 1})
    assert run.ingest_stats.rejected == 3
    assert caplog.text.count("'loss'") == 1  # warned once per metric name


async def test_log_metrics_takes_arrays_over_steps_and_scalars_at_one_step(session, metrics_fake):
    values = np.linspace(0, 1, 1_000)
    async with sagerun.Run("exp", "arrays", session=session) as run:
        await run.log_metrics({"train:loss": values}, step=np.arange(1_000))
        await run.log_metrics({"val:loss": 0.25, "val:acc": np.float32(0.75)}, step=1_000)
    expected = Counter(("train:loss", s, float(v)) for s, v in enumerate(values))
    expected.update({("val:loss", 1_000, 0.25): 1, ("val:acc", 1_000, 0.75): 1})
    assert received(metrics_fake) == expected
    assert metrics_fake.violations == []


@pytest.mark.parametrize(
    ("args", "kwargs", "error", "words"),
    [
        ((3, 1.0), {}, TypeError, "name must be a str"),
        (("", 1.0), {}, ValueError, "name must be 1 to 255"),
        (("x" * 256, 1.0), {}, ValueError, "name must be 1 to 255"),
        (("bad\nname", 1.0), {}, ValueError, "control characters"),
        (("loss", "0.5"), {}, TypeError, "value must be a real number"),
        (("loss", None), {}, TypeError, "value must be a real number"),
        (("loss", True), {}, TypeError, "value must be a real number"),
        (("loss", 10**400), {}, ValueError, "value must fit in a double"),
        (("loss", 1.0), {"step": -1}, ValueError, "step must be between 0"),
        (("loss", 1.0), {"step": 1.5}, TypeError, "step must be an int"),
        (("loss", 1.0), {"timestamp": "yesterday"}, TypeError, "timestamp must be a datetime"),
        (("loss", 1.0), {"timestamp": 0}, ValueError, "timestamp must be within the last 14 days"),
    ],
)
async def test_bad_metric_arguments_raise_at_the_call_and_keep_what_was_logged(session, metrics_fake, args, kwargs,
                                                                                  error, words):
    async with sagerun.Run("exp", "bad-input", session=session) as run:
        await run.log_metric("loss", 0.1, step=0)
        with pytest.raises(error, match=words):
            await run.log_metric(*args, **kwargs)
        await run.log_metric("loss", 0.2, step=1)
    assert received(metrics_fake) == Counter({("loss", 0, 0.1): 1, ("loss", 1, 0.2): 1})


async def test_numpy_scalars_and_ints_are_accepted(session, metrics_fake):
    async with sagerun.Run("exp", "numpy", session=session) as run:
        await run.log_metric("a", np.float32(0.5), step=np.int64(3))
        await run.log_metric("b", 7, step=0)
        await run.log_metric("c", np.array(2.5), step=0)
    assert received(metrics_fake) == Counter({("a", 3, 0.5): 1, ("b", 0, 7.0): 1, ("c", 0, 2.5): 1})


def slow_session(session, **changes):
    return sagerun.Session(**{**session.__dict__, "queue_capacity": 20, **changes})


async def test_full_queue_drop_newest_counts_what_it_dropped(session, metrics_fake):
    metrics_fake.configure(down=True)
    async with sagerun.Run("exp", "drop-newest", session=slow_session(session, full_policy="drop_newest")) as run:
        for step in range(100):
            await run.log_metric("loss", 1.0, step=step)  # never yields: the drain cannot run
        assert run.ingest_stats.dropped == 80
        metrics_fake.configure(down=False)
    assert sorted(p["step"] for p in metrics_fake.points) == list(range(20))


async def test_full_queue_drop_oldest_keeps_the_newest(session, metrics_fake):
    async with sagerun.Run("exp", "drop-oldest", session=slow_session(session, full_policy="drop_oldest")) as run:
        for step in range(100):
            await run.log_metric("loss", 1.0, step=step)
        assert run.ingest_stats.dropped == 80
    assert sorted(p["step"] for p in metrics_fake.points) == list(range(80, 100))


async def test_full_queue_raise_refuses_the_point_and_keeps_the_rest(session, metrics_fake):
    async with sagerun.Run("exp", "raise", session=slow_session(session, full_policy="raise")) as run:
        for step in range(20):
            await run.log_metric("loss", 1.0, step=step)
        with pytest.raises(sagerun.QueueFullError, match="full_policy"):
            await run.log_metric("loss", 1.0, step=20)
    assert sorted(p["step"] for p in metrics_fake.points) == list(range(20))


async def test_full_queue_block_waits_for_room_and_loses_nothing(session, metrics_fake):
    metrics_fake.configure(latency_ms=5)
    async with sagerun.Run("exp", "block", session=slow_session(session)) as run:
        logged = await log_range(run, 300)
        assert run.ingest_stats.dropped == 0
    assert received(metrics_fake) == logged


async def test_lag_is_reported_and_warned_about(session, metrics_fake, caplog):
    metrics_fake.configure(down=True)
    lagging = sagerun.Session(**{**session.__dict__, "lag_warning": 0.2})
    with caplog.at_level(logging.WARNING, logger="sagerun"):
        async with sagerun.Run("exp", "lagging", session=lagging) as run:
            await log_range(run, 10)
            await anyio.sleep(0.6)
            assert run.ingest_stats.lag >= 0.5
            metrics_fake.configure(down=False)
    assert "behind" in caplog.text
    assert run.ingest_stats.lag == 0.0


async def test_both_metrics_clients_put_the_same_points_on_the_wire(session, metrics_fake):
    seen = {}
    base = time.time() - 100.5
    for client in ("http", "botocore"):
        metrics_fake.reset()
        chosen = sagerun.Session(**{**session.__dict__, "metrics_client": client})
        async with sagerun.Run("exp", f"wire-{client}", session=chosen) as run:
            for step in range(35):
                await run.log_metric("loss", step / 7, step=step, timestamp=base + step)
            await run.log_metric("no-step", 2.5, timestamp=base)
        seen[client] = sorted((p["trial_component"].rsplit("-", 1)[0], p["name"], p["step"], p["value"],
                               int(p["timestamp"])) for p in metrics_fake.points)
        assert metrics_fake.violations == []
    assert seen["http"] == seen["botocore"]
    assert len(seen["http"]) == 36


async def test_moto_metrics_endpoint_summarises_what_was_sent(moto_url, sagemaker):
    # moto keeps per-metric summaries only; enough to see that a real server parses our requests.
    session = sagerun.Session(region="us-east-1", endpoint_url=moto_url, retry_deadline=5.0)
    async with sagerun.Run("exp", "to-moto", session=session) as run:
        for step in range(30):
            await run.log_metric("loss", float(step), step=step)
    metrics = sagemaker.describe_trial_component(TrialComponentName="exp-to-moto")["Metrics"]
    [loss] = [m for m in metrics if m["MetricName"] == "loss"]
    assert (loss["Count"], loss["Min"], loss["Max"], loss["Last"]) == (30, 0.0, 29.0, 29.0)


async def test_answers_later_than_the_timeout_are_resent_and_counted(session, metrics_fake):
    metrics_fake.configure(fail_next={"timeout": 2}, timeout_s=1.0)
    impatient = sagerun.Session(**{**session.__dict__, "request_timeout": 0.3})
    async with sagerun.Run("exp", "slow-answers", session=impatient) as run:
        logged = await log_range(run, 50)
    got = received(metrics_fake)
    assert set(got) == set(logged)  # everything arrived ...
    duplicates = sum(got.values()) - sum(logged.values())
    assert 0 < duplicates <= run.ingest_stats.resent_unanswered  # ... and every duplicate is accounted for


async def test_undeliverable_points_are_kept_in_the_spool_by_default(session, metrics_fake, tmp_path):
    from sagerun.store.spool import Spool

    metrics_fake.configure(down=True)
    spooling = sagerun.Session(**{**session.__dict__, "close_timeout": 0.5, "store": str(tmp_path)})
    async with sagerun.Run("exp", "spooled", session=spooling) as run:
        logged = await log_range(run, 40)
    with Spool(str(tmp_path)) as spool:
        kept = [(p[0], p[2], p[1]) for batch in spool.pending(1_000) for p in batch.points
                if batch.trial_component_name == "exp-spooled"]
    assert Counter(kept) == logged
    assert run.ingest_stats.failed == 40


async def test_log_metrics_of_numbers_at_one_step_arrives_as_log_metric_would_send_it(session, metrics_fake):
    async with sagerun.Run("exp", "dict", session=session) as run:
        for step in range(50):
            # plain numbers take log_metric's path; a numpy scalar takes the array path
            await run.log_metrics({"loss": step / 7, "epoch": step, "lr": np.float32(0.5)}, step=step)
        await run.log_metrics({"loss": float("nan"), "epoch": 50}, step=50)
    expected = Counter()
    for step in range(50):
        expected.update([("loss", step, step / 7), ("epoch", step, float(step)), ("lr", step, 0.5)])
    expected[("epoch", 50, 50.0)] += 1
    assert received(metrics_fake) == expected
    assert (run.ingest_stats.delivered, run.ingest_stats.rejected) == (151, 1)
