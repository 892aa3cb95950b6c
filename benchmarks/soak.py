"""Soak: many points through every fault at once or in turn, then count what arrived.

Run by hand: ``python benchmarks/soak.py [--points N] [--big]``. Control calls go to a moto server
and metrics to the recording fake (tests/metrics_fake.py), each in its own process on 127.0.0.1; the
spool is a temporary local store. Each scenario logs ``N`` points (10 metrics x N/10 steps) from an
async training loop, with the faults named, then closes the run and compares, as multisets, what
was logged with what the endpoint received plus what the spool holds:

- delivered: distinct logged points the endpoint received;
- spooled: points in the spool after the run (``sagerun sync`` delivers them: the "down for good"
  scenario runs it and reports what it delivered);
- duplicated: points received more than once: allowed only after a request went unanswered, and
  never more than ``ingest_stats.resent_unanswered``;
- lost: logged points neither received nor spooled. Must be 0.
- peak RSS: the largest resident size of this process (the training loop; the endpoints are
  elsewhere), and of the run's sender process, sampled every 50 ms during the scenario.

Bounded: every scenario has a fixed point count and a deadline (``--deadline`` seconds, default 300);
the script exits with status 1 if any point was lost or a duplicate was not accounted for.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import anyio

from _endpoints import fake_reset, fake_stats, metrics_fake, moto_server
from contenders.procfs import RssSampler

import sagerun
from sagerun._upload import upload_store


@dataclass
class Scenario:
    name: str
    faults: dict[str, Any]
    session: dict[str, Any] = field(default_factory=dict)
    outage: tuple[float, float] | None = None  # (start, end) seconds into the loop: endpoint down
    down_for_good: bool = False
    pace_s: float = 0.0  # spread the loop over this many seconds (0: as fast as it goes)


SCENARIOS = [
    Scenario("throttle 30%", {"throttle_rate": 0.3}),
    Scenario("500/503 30%", {"error_500_rate": 0.15, "error_503_rate": 0.15}),
    Scenario("resets 20%", {"reset_rate": 0.2}),
    Scenario("late answers 5%", {"timeout_rate": 0.05, "timeout_s": 1.5}, {"request_timeout": 1.0}),
    Scenario("item errors, each code", {"item_error_rates": {"INTERNAL_ERROR": 0.05, "CONFLICT_ERROR": 0.05,
                                                             "VALIDATION_ERROR": 0.01, "METRIC_LIMIT_EXCEEDED": 0.01}}),
    Scenario("down 10 s, then back", {}, outage=(5.0, 15.0), pace_s=20.0),
    Scenario("everything, 20 ms latency", {"latency_ms": 20, "throttle_rate": 0.1, "error_500_rate": 0.05,
                                           "error_503_rate": 0.05, "reset_rate": 0.05,
                                           "item_error_rates": {"INTERNAL_ERROR": 0.02}}),
    Scenario("down for good, then sync", {"down": True}, {"close_timeout": 3.0, "retry_deadline": 10.0}),
    # Issue 13's: throttling that slowing down does not lower, an account quota, a loop faster
    # than the endpoint (the queue spills to the journal file), and an endpoint that never comes
    # back before close_timeout.
    Scenario("500 30% + throttle 20%, 20 ms", {"latency_ms": 20, "error_500_rate": 0.3, "throttle_rate": 0.2}),
    Scenario("quota 500/s, 20 ms", {"latency_ms": 20, "rate_limit": 500}),
    Scenario("spill: queue 5,000, 20 ms", {"latency_ms": 20}, {"queue_capacity": 5_000}),
    Scenario("down past close_timeout 5 s, then sync", {"down": True}, {"close_timeout": 5.0}),
    Scenario("durable mode, everything", {"throttle_rate": 0.1, "error_500_rate": 0.05, "error_503_rate": 0.05,
                                          "reset_rate": 0.05, "item_error_rates": {"INTERNAL_ERROR": 0.02,
                                                                                   "VALIDATION_ERROR": 0.01}},
             {"durable": True}),
]


def _post(url: str, path: str, body: dict[str, Any] | None = None) -> None:
    data = json.dumps(body or {}).encode()
    urllib.request.urlopen(urllib.request.Request(f"{url}{path}", data=data, method="POST"), timeout=10).close()


def _points(url: str) -> list[dict[str, Any]]:
    with urllib.request.urlopen(f"{url}/_fake/points", timeout=120) as response:
        return json.loads(response.read())


def _spool(store: str) -> Counter:
    import sqlite3

    path = os.path.join(store, "sagerun.db")
    if not os.path.exists(path):
        return Counter()
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return Counter(conn.execute("SELECT trial_component_name, name, step, value FROM spool").fetchall())
    finally:
        conn.close()


async def scenario(moto: str, fake: str, store: str, spec: Scenario, points: int, deadline: float) -> dict[str, Any]:
    fake_reset(fake)
    _post(fake, "/_fake/config", {"seed": 1, **spec.faults})
    session = sagerun.Session(**{"region": "us-east-1", "endpoint_url": moto, "metrics_endpoint_url": fake,
                                 "store": store, "retry_deadline": 60.0, "close_timeout": 120.0, **spec.session})
    run_name = f"{spec.name}-{time.time_ns()}"
    steps = points // 10
    started = time.monotonic()
    with RssSampler() as rss, anyio.fail_after(deadline):
        async with sagerun.Run("soak", run_name, session=session) as run:
            tc = run.trial_component_name

            async def outage() -> None:
                assert spec.outage is not None
                await anyio.sleep(spec.outage[0])
                _post(fake, "/_fake/config", {"down": True})
                await anyio.sleep(spec.outage[1] - spec.outage[0])
                _post(fake, "/_fake/config", {"down": False})

            async with anyio.create_task_group() as tasks:
                if spec.outage:
                    tasks.start_soon(outage)
                for step in range(steps):
                    for metric in range(10):
                        await run.log_metric(f"m{metric}", step / 7 + metric, step=step)
                    if step % 100 == 0:
                        if spec.pace_s:
                            ahead = (step / steps) * spec.pace_s - (time.monotonic() - started)
                            await anyio.sleep(max(0.0, ahead))
                        else:
                            await anyio.sleep(0)
    seconds = time.monotonic() - started
    stats = run.ingest_stats
    faults = sum(fake_stats(fake)["faults"].values())
    logged = Counter((tc, f"m{metric}", step, step / 7 + metric) for step in range(steps) for metric in range(10))
    got = Counter((p["trial_component"], p["name"], p["step"], p["value"]) for p in _points(fake))
    kept = Counter({k: v for k, v in _spool(store).items() if k[0] == tc})
    row = {
        "scenario": spec.name, "faults": faults, "logged": sum(logged.values()),
        "delivered": sum((got & logged).values()), "spooled": sum(kept.values()),
        "duplicated": sum((got + kept - logged).values()), "resent": stats.resent_unanswered,
        "lost": sum((logged - got - kept).values()), "rss_mib": rss.peak / 2**20,
        "sender_rss_mib": rss.sender_peak / 2**20, "seconds": seconds,
        "synced": "",
    }
    if spec.down_for_good or spec.faults.get("down"):
        fake_reset(fake)
        report = await upload_store(session)
        after = Counter((p["trial_component"], p["name"], p["step"], p["value"]) for p in _points(fake))
        row["synced"] = f"{report.delivered:,}"
        # Lost after the sync too: the spool must have delivered every point it held.
        row["lost"] = sum((logged - got - after - Counter({k: v for k, v in _spool(store).items() if k[0] == tc})).values())
    return row


async def main_async(points: int, big: bool, deadline: float, only: str | None) -> list[dict[str, Any]]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="sagerun-soak-") as store, moto_server() as moto, metrics_fake() as fake:
        specs = [s for s in SCENARIOS if only is None or only.lower() in s.name.lower()]
        for number, spec in enumerate(specs):  # a spool of its own for each scenario
            rows.append(await scenario(moto, fake, os.path.join(store, str(number)), spec, points, deadline))
            print(f"  done: {spec.name} ({rows[-1]['seconds']:.1f} s)", file=sys.stderr, flush=True)
        if big:
            spec = Scenario("1M points, 20 ms latency", {"latency_ms": 20, "throttle_rate": 0.05})
            rows.append(await scenario(moto, fake, os.path.join(store, "big"), spec, 1_000_000, deadline * 4))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--points", type=int, default=50_000, help="points per scenario (default 50,000)")
    parser.add_argument("--big", action="store_true", help="also 1,000,000 points at 20 ms latency")
    parser.add_argument("--deadline", type=float, default=300.0, help="seconds a scenario may take")
    parser.add_argument("--only", default=None, help="run the scenarios whose name contains this")
    args = parser.parse_args()
    rows = anyio.run(main_async, args.points, args.big, args.deadline, args.only)
    print("| scenario | faults injected | points logged | delivered | spooled | delivered by sync | duplicated "
          "| resent unanswered | lost | peak RSS MiB | sender RSS MiB | seconds |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['scenario']} | {r['faults']:,} | {r['logged']:,} | {r['delivered']:,} | {r['spooled']:,} "
              f"| {r['synced'] or '-'} | {r['duplicated']:,} | {r['resent']:,} | {r['lost']} | {r['rss_mib']:.0f} "
              f"| {r['sender_rss_mib']:.0f} | {r['seconds']:.1f} |")
    bad = [r["scenario"] for r in rows if r["lost"] or r["duplicated"] > r["resent"]]
    if bad:
        print(f"FAILED: {', '.join(bad)}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
