"""Cost of sending BatchPutMetrics: the aioboto3 client against sagerun's orjson + SigV4 + aiohttp path.

Run by hand: ``python benchmarks/send_path.py``. Sends the same 10-point requests through
``SageMakerBackend.put_metrics`` with each ``metrics_client``, several in flight, to the recording
fake in its own process, and prints requests/s and the CPU this process spent per request.
"""

from __future__ import annotations

import argparse
import time

import anyio

from _endpoints import fake_reset, fake_stats, metrics_fake

import sagerun
from sagerun.backends.sagemaker import SageMakerBackend


async def send(url: str, client: str, requests: int, in_flight: int) -> tuple[float, float]:
    session = sagerun.Session(region="us-east-1", metrics_endpoint_url=url, metrics_client=client,
                              max_in_flight=max(in_flight, 1))
    now = time.time()
    points = [(f"metric-{i}", i * 0.5, 7, now) for i in range(10)]
    async with SageMakerBackend(session) as backend:
        await backend.put_metrics("bench-run", points)  # warm the connection pool
        limiter = anyio.Semaphore(in_flight)

        async def one() -> None:
            async with limiter:
                await backend.put_metrics("bench-run", points)

        wall, cpu = time.perf_counter(), time.process_time()
        async with anyio.create_task_group() as group:
            for _ in range(requests):
                await limiter.acquire()
                limiter.release()
                group.start_soon(one)
        return time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=3000)
    args = parser.parse_args()
    rows = []
    with metrics_fake() as url:
        for in_flight in (1, 8, 32):
            for client in ("botocore", "http"):
                fake_reset(url)
                wall, cpu = anyio.run(send, url, client, args.requests, in_flight)
                received = fake_stats(url)["requests"] - 1
                assert received == args.requests, (received, args.requests)
                rows.append((client, in_flight, args.requests / wall, cpu / args.requests * 1e3))
    base = {f: r for c, f, r, _ in rows if c == "botocore" for _ in [0]}
    base_cpu = {f: ms for c, f, _, ms in rows if c == "botocore"}
    print(f"{'client':<10}{'in flight':>10}{'requests/s':>12}{'CPU ms/req':>12}{'speed vs boto':>15}{'CPU vs boto':>13}")
    for client, in_flight, rate, cpu_ms in rows:
        print(f"{client:<10}{in_flight:>10}{rate:>12,.0f}{cpu_ms:>12.3f}{rate / base[in_flight]:>14.2f}x"
              f"{cpu_ms / base_cpu[in_flight]:>12.2f}x")


if __name__ == "__main__":
    main()
