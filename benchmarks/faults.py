"""Delivery under faults and quotas (issue 13): what a run delivers before close, and how close it
keeps to a quota. Endpoints in their own processes; sagerun's default session but for the store.

    .venv/bin/python benchmarks/faults.py [--points 20000]

Rows:
* ``faults``: 4 threads of the sync facade log ``--points`` points between them to an endpoint that
  answers 30% of requests 500 and 20% ThrottlingException, at 20 ms; close_timeout 30 s.
* ``quota N``: one thread logs to an endpoint that throttles beyond N requests a second (a token
  bucket, as an account quota), at 20 ms, for ``--seconds``; the share of N sustained and of
  requests throttled.
* ``boto3 adaptive``: the baseline, the same endpoints driven by boto3's own client in botocore's
  adaptive retry mode (a client-side rate limiter that CUBIC moves on throttles), from 4 threads
  for the faults row (stopped after ``CUTOFF`` s) and 8 for the quotas, as many as sagerun starts
  with.
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

import boto3  # noqa: E402
from botocore.config import Config  # noqa: E402

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


#: seconds after which the boto3 faults row stops sending (botocore's limiter may go down to half
#: a request a second)
CUTOFF = 60.0


def boto3_client(fake: str, threads: int):  # noqa: ANN201
    config = Config(retries={"mode": "adaptive", "max_attempts": 10}, max_pool_connections=threads)
    return boto3.client("sagemaker-metrics", region_name="us-east-1", endpoint_url=fake, config=config,
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def boto3_send(client, batches: int, stop: float = float("inf")) -> int:  # noqa: ANN001
    """Send ``batches`` batches of 10 points (or until ``stop``); the points that failed for good."""
    lost = 0
    for step in range(batches):
        if time.monotonic() > stop:
            break
        metrics = [{"MetricName": "loss", "Timestamp": time.time(), "Step": step * 10 + i, "Value": 1.0}
                   for i in range(10)]
        try:
            client.batch_put_metrics(TrialComponentName="bench", MetricData=metrics)
        except Exception:  # noqa: BLE001 - a point given up is counted, whatever the reason
            lost += 10
    return lost


def boto3_faults_row(fake: str, points: int) -> dict[str, object]:
    configure(fake, latency_ms=20, error_500_rate=0.3, throttle_rate=0.2)
    client = boto3_client(fake, 4)
    lost: list[int] = []
    started = time.monotonic()
    stop = started + CUTOFF
    threads = [threading.Thread(target=lambda: lost.append(boto3_send(client, points // 40, stop)))
               for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    delivered = fake_stats(fake)["distinct_points"]
    return {"row": "faults, boto3 adaptive", "logged": points, "delivered": delivered,
            "given up": sum(lost), "close s": round(time.monotonic() - started, 1),
            "requests": fake_stats(fake)["requests"]}


def boto3_quota_row(fake: str, quota: int, seconds: float) -> dict[str, object]:
    configure(fake, latency_ms=20, rate_limit=quota)
    client = boto3_client(fake, 8)
    stop = time.monotonic() + 1.0 + seconds
    threads = [threading.Thread(target=boto3_send, args=(client, 10**9, stop)) for _ in range(8)]
    for thread in threads:
        thread.start()
    time.sleep(1.0)
    before, t0 = fake_stats(fake), time.monotonic()
    time.sleep(seconds)
    after, t1 = fake_stats(fake), time.monotonic()
    for thread in threads:
        thread.join()
    requests = after["requests"] - before["requests"]
    throttled = after["faults"].get("rate_limited", 0) - before["faults"].get("rate_limited", 0)
    taken = (requests - throttled) / (t1 - t0)
    return {"row": f"quota {quota}/s, boto3 adaptive", "sustained / N": round(taken / quota, 2),
            "throttled share": round(throttled / max(requests, 1), 3), "requests/s": round(requests / (t1 - t0))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--points", type=int, default=20_000)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    with moto_server() as moto, metrics_fake() as fake, tempfile.TemporaryDirectory() as store:
        session = sagerun.Session(region="us-east-1", endpoint_url=moto, metrics_endpoint_url=fake, store=store,
                                  queue_capacity=10_000_000)
        for run in (lambda: faults_row(session, fake, args.points),
                    lambda: quota_row(session, fake, 50, args.seconds),
                    lambda: quota_row(session, fake, 500, args.seconds),
                    lambda: boto3_faults_row(fake, args.points),
                    lambda: boto3_quota_row(fake, 50, args.seconds),
                    lambda: boto3_quota_row(fake, 500, args.seconds)):
            moto_reset(moto)
            fake_reset(fake)
            row = run()
            print("  ".join(f"{key}: {value}" for key, value in row.items()), flush=True)


if __name__ == "__main__":
    main()
