"""Delivery under faults and quotas (issue 13): what a run delivers before close, and how close it
keeps to a quota. Endpoints in their own processes; sagerun's default session but for the store.

    .venv/bin/python benchmarks/faults.py [--points 20000]

Rows:
* ``faults``: 4 threads of the sync facade log ``--points`` points between them to an endpoint that
  answers 30% of requests 500 and 20% ThrottlingException, at 20 ms; close_timeout 30 s.
* ``quota N``: one thread logs to an endpoint that throttles beyond N requests a second (a token
  bucket, as an account quota), at 20 ms, for ``--seconds``; the share of N sustained and of
  requests throttled.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import sys

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _endpoints import fake_reset, fake_stats, metrics_fake, moto_reset, moto_server  # noqa: E402

import sagerun  # noqa: E402
import sagerun.sync as sync  # noqa: E402


def configure(url: str, **faults: object) -> None:
    request = urllib.request.Request(f"{url}/_fake/config", data=json.dumps(faults).encode(), method="POST")
    urllib.request.urlopen(request, timeout=10).close()


def faults_row(session: sagerun.Session, fake: str, points: int) -> dict[str, object]:
    configure(fake, latency_ms=20, error_500_rate=0.3, throttle_rate=0.2)
    per_thread = points // 4

    def log(run: sync.Run, thread: int) -> None:
        for step in range(per_thread):
            run.log_metric(f"loss-{thread}", float(step), step=step)

    started = time.monotonic()
    with sync.Run("bench", "faults", session=session) as run:
        threads = [threading.Thread(target=log, args=(run, t)) for t in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        logged = time.monotonic() - started
    closed = time.monotonic() - started
    stats = run.ingest_stats
    return {"row": "faults 30% 500 + 20% throttle", "logged": per_thread * 4, "delivered": stats.delivered,
            "spooled": stats.failed, "close s": round(closed, 1), "logging s": round(logged, 1),
            "requests": fake_stats(fake)["requests"]}


def quota_row(session: sagerun.Session, fake: str, quota: int, seconds: float) -> dict[str, object]:
    configure(fake, latency_ms=20, rate_limit=quota)
    with sync.Run("bench", f"quota-{quota}", session=session) as run:
        # Logged up front: the engine, not the caller, sets the pace.
        run.log_metrics({"loss": [float(i) for i in range(int(quota * 10 * seconds * 2))]}, step=0)
        time.sleep(1.0)  # past the start, and past the first throttles
        before, t0 = fake_stats(fake), time.monotonic()
        time.sleep(seconds)
        after, t1 = fake_stats(fake), time.monotonic()
    requests = after["requests"] - before["requests"]
    throttled = after["faults"].get("rate_limited", 0) - before["faults"].get("rate_limited", 0)
    taken = (requests - throttled) / (t1 - t0)
    return {"row": f"quota {quota}/s", "sustained / N": round(taken / quota, 2),
            "throttled share": round(throttled / max(requests, 1), 3), "requests/s": round(requests / (t1 - t0))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--points", type=int, default=20_000)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    rows = []
    with moto_server() as moto, metrics_fake() as fake, tempfile.TemporaryDirectory() as store:
        session = sagerun.Session(region="us-east-1", endpoint_url=moto, metrics_endpoint_url=fake, store=store,
                                  queue_capacity=10_000_000)
        for run in (lambda: faults_row(session, fake, args.points),
                    lambda: quota_row(session, fake, 50, args.seconds),
                    lambda: quota_row(session, fake, 500, args.seconds)):
            moto_reset(moto)
            fake_reset(fake)
            rows.append(run())
    for row in rows:
        print("  ".join(f"{key}: {value}" for key, value in row.items()))


if __name__ == "__main__":
    main()
