"""End to end through the async Run: points logged, time until close returns with all delivered.

Run by hand: ``python benchmarks/engine.py [--points N]``. Control calls go to a moto server and
metrics to the recording fake, each in its own process, at 0 ms and 20 ms of added latency; both
metrics clients. Prints caller cost per point, time to close, points/s delivered and CPU per point.
"""

from __future__ import annotations

import argparse
import resource
import time

import anyio

from _endpoints import fake_reset, fake_stats, metrics_fake, moto_server

import sagerun


async def one(moto: str, fake: str, client: str, points: int) -> dict[str, float]:
    session = sagerun.Session(region="us-east-1", endpoint_url=moto, metrics_endpoint_url=fake,
                              metrics_client=client, queue_capacity=max(points, 100_000), close_timeout=600)
    async with sagerun.Run("bench", f"engine-{client}-{time.time_ns()}", session=session) as run:
        await anyio.sleep(0)
        cpu, wall = time.process_time(), time.perf_counter()
        for step in range(points // 10):
            for metric in range(10):
                await run.log_metric(f"m{metric}", 0.5, step=step)
            if step % 100 == 0:
                await anyio.sleep(0)  # a training step yields now and then, as real async code does
        logged = time.perf_counter() - wall
    closed = time.perf_counter() - wall
    stats = run.ingest_stats
    assert stats.delivered == points, stats
    return {"caller_us": logged / points * 1e6, "close_s": closed, "rate": points / closed,
            "cpu_us": (time.process_time() - cpu) / points * 1e6}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--points", type=int, default=100_000)
    args = parser.parse_args()
    rows = []
    with moto_server() as moto:
        for latency in (0, 20):
            with metrics_fake(latency) as fake:
                for client in ("botocore", "http"):
                    fake_reset(fake)
                    row = anyio.run(one, moto, fake, client, args.points)
                    assert fake_stats(fake)["points"] == args.points
                    rows.append((latency, client, row))
    print(f"{'latency':>8} {'client':<9}{'caller µs/pt':>13}{'close s':>9}{'points/s':>10}{'CPU µs/pt':>10}")
    for latency, client, row in rows:
        print(f"{latency:>6}ms {client:<9}{row['caller_us']:>13.2f}{row['close_s']:>9.2f}{row['rate']:>10,.0f}"
              f"{row['cpu_us']:>10.1f}")
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
