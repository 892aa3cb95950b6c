"""Reliability under faults and load: what the endpoint received plus what the spool holds is what
the training loop logged, the loop never raised, and closing never hangs.

Every fault is injected by the recording fake of the metrics endpoint (``tests/metrics_fake.py``) or
by a switchable TCP proxy in front of the moto server; all on 127.0.0.1. Faults that
``test_ingestion.py`` already covers one by one (a few failures in a row, a short outage, a full
queue from one task) are not repeated: here they come at rates, for long, from many callers, and
the accounting includes the spool.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import select
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from typing import Any

import anyio
import numpy as np
import pytest

import sagerun
import sagerun.sync

# -- helpers (imported by the other reliability test files too) ------------------------------------


def received(fake: Any) -> Counter:
    """The multiset of points the recording fake took, as (trial component, name, step, value)."""
    return Counter((p["trial_component"], p["name"], p["step"], p["value"]) for p in fake.points)


def spooled(store: str, *, refused: bool | None = None) -> Counter:
    """The multiset of points in the spool of ``store``, read from the file as a user could."""
    path = os.path.join(store, "sagerun.db")
    if not os.path.exists(path):
        return Counter()
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        where = "" if refused is None else ("WHERE refused IS NOT NULL" if refused else "WHERE refused IS NULL")
        rows = conn.execute(f"SELECT trial_component_name, name, step, value FROM spool {where}").fetchall()
    finally:
        conn.close()
    return Counter((tc, name, step, value) for tc, name, step, value in rows)


def logged_range(tc: str, count: int, name: str = "loss", start: int = 0) -> Counter:
    return Counter((tc, name, step, step / 7) for step in range(start, start + count))


def free_port() -> int:
    """A port on 127.0.0.1 nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


_RST = b"\x01\x00\x00\x00\x00\x00\x00\x00"  # SO_LINGER on, 0 s: close() sends a reset


class SwitchProxy:
    """A TCP proxy on 127.0.0.1 in front of ``target`` (``http://127.0.0.1:PORT``).

    Modes: ``up`` forwards; ``down`` resets every connection at once (a host that is gone);
    ``blackhole`` accepts and never answers (a hung server). Switching also cuts the connections
    open at the time, so no pooled keep-alive connection outlives an outage.
    """

    def __init__(self, target: str) -> None:
        host, port = target.rsplit("//", 1)[1].rsplit(":", 1)
        self._target = (host, int(port))
        self.mode = "up"
        self.throttle_next = 0
        """The next requests (connections) answered with a ThrottlingException instead of forwarded."""
        self.throttled = 0
        self._listener = socket.socket()
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self._listener.settimeout(0.1)
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._accept, name="switch-proxy", daemon=True)

    def __enter__(self) -> SwitchProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopped.set()
        self._thread.join(5)
        self._listener.close()
        self._cut()

    def set(self, mode: str) -> None:
        assert mode in ("up", "down", "blackhole")
        self.mode = mode
        self._cut()

    def _cut(self) -> None:
        with self._lock:
            for sock in self._open:
                try:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RST)
                    sock.close()
                except OSError:
                    pass
            self._open.clear()

    def _accept(self) -> None:
        while not self._stopped.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                continue
            if self.mode == "down":
                client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RST)
                client.close()
                continue
            if self.throttle_next > 0:
                self.throttle_next -= 1
                self.throttled += 1
                threading.Thread(target=self._throttle, args=(client,), daemon=True).start()
                continue
            with self._lock:
                self._open.add(client)
            if self.mode == "up":
                threading.Thread(target=self._pipe, args=(client,), daemon=True).start()

    @staticmethod
    def _throttle(client: socket.socket) -> None:
        """Answer one request as the SageMaker API does when it throttles (awsJson 1.1, HTTP 400)."""
        body = b'{"__type": "ThrottlingException", "message": "Rate exceeded"}'
        try:
            client.settimeout(2)
            client.recv(65536)
            client.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Type: application/x-amz-json-1.1\r\n"
                           b"x-amzn-ErrorType: ThrottlingException\r\nConnection: close\r\n"
                           b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
        except OSError:
            pass
        finally:
            client.close()

    def _pipe(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(self._target, timeout=5)
        except OSError:
            client.close()
            return
        with self._lock:
            self._open.add(upstream)
        pair = {client: upstream, upstream: client}
        try:
            while not self._stopped.is_set():
                readable, _, _ = select.select(list(pair), [], [], 0.2)
                for sock in readable:
                    data = sock.recv(65536)
                    if not data:
                        return
                    pair[sock].sendall(data)
        except (OSError, ValueError):
            return
        finally:
            with self._lock:
                self._open.discard(client)
                self._open.discard(upstream)
            for sock in (client, upstream):
                try:
                    sock.close()
                except OSError:
                    pass


def cli_env(moto_url: str, metrics_url: str, **extra: str) -> dict[str, str]:
    """The environment of a ``sagerun`` subprocess pointed at moto and the fake, by the AWS variables."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SAGERUN_")}
    env.update(AWS_ENDPOINT_URL=moto_url, AWS_ENDPOINT_URL_SAGEMAKER_METRICS=metrics_url, **extra)
    return env


@pytest.fixture
def spooling(session: sagerun.Session, tmp_path) -> sagerun.Session:
    """The test session with its own store, so that the default dead-letter hook's spool is known."""
    return dataclasses.replace(session, store=str(tmp_path / "store"))


async def log_range(run: Any, count: int, name: str = "loss", yield_every: int = 50) -> Counter:
    """Log ``count`` points as a training loop would (yielding now and then); never raises here."""
    for step in range(count):
        await run.log_metric(name, step / 7, step=step)
        if step % yield_every == 0:
            await anyio.sleep(0)
    return logged_range(run.trial_component_name, count, name)


# -- faults at rates: delivered + spooled == logged ------------------------------------------------

FAULTS = {
    "throttle-30%": dict(throttle_rate=0.3),
    "throttle-429-30%": dict(throttle_429_rate=0.3),
    "500-503-30%": dict(error_500_rate=0.15, error_503_rate=0.15),
    "resets-20%": dict(reset_rate=0.2),
    "item-errors-each-code": dict(item_error_rates={"INTERNAL_ERROR": 0.05, "CONFLICT_ERROR": 0.05,
                                                    "VALIDATION_ERROR": 0.02, "METRIC_LIMIT_EXCEEDED": 0.02}),
    "all-at-once": dict(throttle_rate=0.1, error_500_rate=0.1, error_503_rate=0.1, reset_rate=0.05,
                        item_error_rates={"INTERNAL_ERROR": 0.03, "VALIDATION_ERROR": 0.01}),
}


@pytest.mark.parametrize("fault", list(FAULTS))
async def test_faults_at_rates_lose_nothing_between_the_endpoint_and_the_spool(spooling, metrics_fake, fault):
    metrics_fake.configure(seed=7, **FAULTS[fault])
    with anyio.fail_after(30):
        async with sagerun.Run("rel", f"rates-{fault}", session=spooling) as run:
            logged = await log_range(run, 1_500)
    got, kept = received(metrics_fake), spooled(spooling.store_path)
    assert got + kept == logged, f"lost {logged - got - kept}, extra {got + kept - logged}"
    assert sum(metrics_fake.stats["faults"].values()) > 20, "the faults were not injected"
    assert metrics_fake.violations == []
    stats = run.ingest_stats
    assert (stats.delivered, stats.failed, stats.queued, stats.in_flight) == (sum(got.values()), sum(kept.values()), 0, 0)
    # Whole-request faults are retried until delivered: only points refused item by item are spooled.
    if "item_error_rates" not in FAULTS[fault]:
        assert kept == Counter()
    else:  # refused for good item by item: set aside at once, so a plain `sagerun sync` skips them
        assert kept and spooled(spooling.store_path, refused=False) == Counter()


async def test_durable_mode_under_every_fault_keeps_the_same_account(spooling, metrics_fake):
    """Durable mode journals points in the spool before sending: under faults, what was delivered
    leaves the journal and what was refused stays, so the account still balances exactly."""
    metrics_fake.configure(seed=9, **FAULTS["all-at-once"])
    durable = dataclasses.replace(spooling, durable=True)
    with anyio.fail_after(30):
        async with sagerun.Run("rel", "durable-faults", session=durable) as run:
            logged = await log_range(run, 1_500)
    got, kept = received(metrics_fake), spooled(durable.store_path)
    assert got + kept == logged, f"lost {logged - got - kept}, extra {got + kept - logged}"
    assert kept and sum(kept.values()) == run.ingest_stats.failed  # the refused items, kept once


async def test_answers_later_than_the_timeout_at_a_rate_duplicate_only_what_is_counted(spooling, metrics_fake):
    metrics_fake.configure(timeout_rate=0.1, timeout_s=0.6, seed=5)
    impatient = dataclasses.replace(spooling, request_timeout=0.25)
    with anyio.fail_after(30):
        async with sagerun.Run("rel", "late-answers", session=impatient) as run:
            logged = await log_range(run, 600)
    got, kept = received(metrics_fake), spooled(impatient.store_path)
    assert set(got + kept) == set(logged) and kept == Counter()
    duplicates = sum((got - logged).values())
    assert metrics_fake.stats["faults"]["timeout"] > 3
    # A request whose answer came too late was taken by the service, then sent again: counted.
    assert 0 < duplicates <= run.ingest_stats.resent_unanswered


async def test_an_outage_in_the_middle_of_training_loses_nothing(spooling, metrics_fake):
    """The endpoint goes away for 1.5 s while the loop keeps logging, then comes back."""
    logged: Counter = Counter()
    slowest = 0.0
    with anyio.fail_after(30):
        async with sagerun.Run("rel", "outage", session=spooling) as run:
            tc = run.trial_component_name
            for step in range(300):
                if step == 50:
                    metrics_fake.configure(down=True)
                if step == 200:
                    metrics_fake.configure(down=False)
                started = time.perf_counter()
                await run.log_metric("loss", step / 7, step=step)
                slowest = max(slowest, time.perf_counter() - started)
                logged[(tc, "loss", step, step / 7)] += 1
                await anyio.sleep(0.01)
            during = run.ingest_stats
    assert received(metrics_fake) == logged
    assert spooled(spooling.store_path) == Counter()
    assert metrics_fake.stats["faults"]["down"] > 0 and during.retried > 0
    assert slowest < 0.05, "logging waited on the network during the outage"


def test_endpoint_down_for_good_spools_everything_and_sagerun_sync_delivers_it(spooling, metrics_fake, moto_url):
    metrics_fake.configure(down=True)
    closing = dataclasses.replace(spooling, close_timeout=1.5, retry_deadline=60.0)
    with sagerun.sync.Run("rel", "down-for-good", session=closing) as run:
        tc = run.trial_component_name
        for step in range(400):
            run.log_metric("loss", step / 7, step=step)
        started = time.monotonic()
    closed_in = time.monotonic() - started
    # the run closed before its sender process was up: the fallback spends what is left of the
    # close timeout, not a new one
    assert closed_in < closing.close_timeout + 1.0, f"close took {closed_in:.1f} s"
    logged = logged_range(tc, 400)
    assert received(metrics_fake) == Counter()
    assert spooled(closing.store_path, refused=False) == logged
    assert run.ingest_stats.failed == 400

    metrics_fake.configure(down=False)
    done = subprocess.run([sys.executable, "-m", "sagerun", "sync", "--store", closing.store_path],
                          env=cli_env(moto_url, metrics_fake.url), capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "delivered 400 points" in done.stdout
    assert received(metrics_fake) == logged
    assert spooled(closing.store_path) == Counter()


# -- the control plane failing ---------------------------------------------------------------------


async def test_a_control_plane_that_never_answers_is_a_clear_error_at_enter_not_a_hang(metrics_fake, moto_url):
    with SwitchProxy(moto_url) as proxy:
        proxy.set("blackhole")
        session = sagerun.Session(region="us-east-1", endpoint_url=proxy.url, metrics_endpoint_url=metrics_fake.url,
                                  request_timeout=0.5, retry_initial=0.01, retry_max_backoff=0.05, retry_deadline=1.0)
        started = time.monotonic()
        with anyio.fail_after(20), pytest.raises(sagerun.BackendError, match="could not load or create run 'hung'"):
            async with sagerun.Run("rel", "hung", session=session):
                pytest.fail("entered a run the control plane never created")
        assert time.monotonic() - started < 10


async def test_a_control_plane_back_before_the_retry_deadline_saves_the_final_status(
        metrics_fake, moto_url, sagemaker):
    with SwitchProxy(moto_url) as proxy:
        session = sagerun.Session(region="us-east-1", endpoint_url=proxy.url, metrics_endpoint_url=metrics_fake.url,
                                  request_timeout=1.0, retry_initial=0.05, retry_max_backoff=0.2, retry_deadline=8.0,
                                  close_timeout=10.0)
        async with sagerun.Run("rel", "exit-outage", session=session) as run:
            run.log_parameters({"lr": 0.5, "opt": "adam"})
            logged = await log_range(run, 100)
            proxy.set("down")
            threading.Timer(1.0, proxy.set, args=("up",)).start()
    component = sagemaker.describe_trial_component(TrialComponentName="rel-exit-outage")
    assert component["Status"]["PrimaryStatus"] == "Completed"
    assert component["Parameters"] == {"lr": {"NumberValue": 0.5}, "opt": {"StringValue": "adam"}}
    assert received(metrics_fake) == logged


async def test_a_throttled_control_plane_at_enter_and_exit_still_saves_status_and_parameters(
        metrics_fake, moto_url, sagemaker):
    with SwitchProxy(moto_url) as proxy:
        session = sagerun.Session(region="us-east-1", endpoint_url=proxy.url, metrics_endpoint_url=metrics_fake.url,
                                  request_timeout=2.0, retry_initial=0.02, retry_max_backoff=0.1, retry_deadline=8.0)
        proxy.throttle_next = 4
        with anyio.fail_after(30):
            async with sagerun.Run("rel", "throttled-control", session=session) as run:
                assert proxy.throttled == 4
                run.log_parameter("lr", 0.25)
                logged = await log_range(run, 50)
                proxy.set("up")  # cut pooled connections: the exit's calls open new ones, throttled
                proxy.throttle_next = 3
    assert proxy.throttled == 7
    component = sagemaker.describe_trial_component(TrialComponentName="rel-throttled-control")
    assert component["Status"]["PrimaryStatus"] == "Completed"
    assert component["Parameters"] == {"lr": {"NumberValue": 0.25}}
    assert received(metrics_fake) == logged


@pytest.mark.parametrize("mode", ["down", "blackhole"])
async def test_a_control_plane_gone_for_good_at_exit_is_reported_and_the_run_returns_in_time(
        metrics_fake, moto_url, sagemaker, caplog, mode):
    with SwitchProxy(moto_url) as proxy:
        session = sagerun.Session(region="us-east-1", endpoint_url=proxy.url, metrics_endpoint_url=metrics_fake.url,
                                  request_timeout=0.5, retry_initial=0.01, retry_max_backoff=0.05, retry_deadline=1.5,
                                  close_timeout=3.0)
        with caplog.at_level(logging.ERROR, logger="sagerun"), anyio.fail_after(20):
            async with sagerun.Run("rel", f"exit-{mode}", session=session) as run:
                logged = await log_range(run, 100)
                proxy.set(mode)
                started = time.monotonic()
        closed_in = time.monotonic() - started
    assert closed_in < session.close_timeout + 2.0
    # The metrics took their own path and all arrived; the lost status is said, with the run's name.
    assert received(metrics_fake) == logged
    assert "the final status Completed of rel-exit-" + mode + " was not saved" in caplog.text
    assert sagemaker.describe_trial_component(TrialComponentName=f"rel-exit-{mode}")["Status"]["PrimaryStatus"] \
        == "InProgress"


# -- load: many callers at once --------------------------------------------------------------------


def test_eight_threads_log_to_one_run_at_once(spooling, metrics_fake):
    metrics_fake.configure(throttle_rate=0.1, seed=1)
    per_thread = 1_000
    errors: list[BaseException] = []
    with sagerun.sync.Run("rel", "threads", session=spooling) as run:
        tc = run.trial_component_name
        barrier = threading.Barrier(8)

        def worker(rank: int) -> None:
            try:
                barrier.wait(5)
                for step in range(per_thread):
                    run.log_metric(f"rank{rank}", step / 7, step=step)
                run.log_metrics({f"rank{rank}:block": np.arange(100) / 7}, step=np.arange(100))
            except BaseException as exc:  # noqa: BLE001 - surfaced below
                errors.append(exc)

        threads = [threading.Thread(target=worker, args=(rank,)) for rank in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert not any(thread.is_alive() for thread in threads), "a logging thread deadlocked"
    assert errors == []
    logged: Counter = Counter()
    for rank in range(8):
        logged += logged_range(tc, per_thread, f"rank{rank}") + logged_range(tc, 100, f"rank{rank}:block")
    assert received(metrics_fake) + spooled(spooling.store_path) == logged
    assert run.ingest_stats.enqueued == 8 * (per_thread + 100)


async def test_eight_asyncio_tasks_log_to_one_run_at_once(spooling, metrics_fake):
    metrics_fake.configure(latency_ms=2, error_503_rate=0.1, seed=2)
    small = dataclasses.replace(spooling, queue_capacity=500)  # the tasks also meet a full queue
    with anyio.fail_after(30):
        async with sagerun.Run("rel", "tasks", session=small) as run:
            async with anyio.create_task_group() as tasks:
                for rank in range(8):
                    tasks.start_soon(log_range, run, 800, f"task{rank}", 10)
    logged = sum((logged_range("rel-tasks", 800, f"task{rank}") for rank in range(8)), Counter())
    assert received(metrics_fake) + spooled(small.store_path) == logged
    assert run.ingest_stats.dropped == 0


@pytest.mark.parametrize("policy", ["block", "drop_newest", "drop_oldest", "raise"])
def test_a_full_queue_from_eight_threads_follows_the_policy_and_counts_every_point(spooling, metrics_fake, policy):
    metrics_fake.configure(latency_ms=20)  # a slow endpoint: the 50-point queue is full most of the time
    tight = dataclasses.replace(spooling, queue_capacity=50, full_policy=policy, max_in_flight=2)
    per_thread = 150
    refused = Counter()
    with sagerun.sync.Run("rel", f"full-{policy.replace('_', '-')}", session=tight) as run:
        tc = run.trial_component_name

        def worker(rank: int) -> None:
            for step in range(per_thread):
                try:
                    run.log_metric(f"t{rank}", step / 7, step=step)
                except sagerun.QueueFullError:
                    refused[rank] += 1

        threads = [threading.Thread(target=worker, args=(rank,)) for rank in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert not any(thread.is_alive() for thread in threads), "a logging thread deadlocked"
        assert run.ingest_stats.queued <= tight.queue_capacity
    logged = sum((logged_range(tc, per_thread, f"t{rank}") for rank in range(8)), Counter())
    got = received(metrics_fake) + spooled(tight.store_path)
    stats = run.ingest_stats
    assert got <= logged and max(got.values()) == 1, "a point arrived that was not logged, or twice"
    missing = sum((logged - got).values())
    if policy == "block":
        assert got == logged and stats.dropped == 0
    elif policy == "raise":
        assert missing == sum(refused.values()) > 0 and stats.dropped == 0
    else:
        assert missing == stats.dropped > 0


def _rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="reads RSS from /proc")
async def test_a_slow_endpoint_does_not_grow_memory_past_the_queue(spooling, metrics_fake):
    """800,000 points against an endpoint at 200 ms a request: the queue (capacity 2,000, dropping
    the oldest) bounds what is held. Unbounded, the points alone would take ~120 MB."""
    metrics_fake.configure(latency_ms=200)
    bounded = dataclasses.replace(spooling, queue_capacity=2_000, full_policy="drop_oldest", max_in_flight=4,
                                  close_timeout=0.5)
    peak_held, peak_rss = 0, 0
    async with sagerun.Run("rel", "slow-memory", session=bounded) as run:
        for step in range(2_000):  # warm up: allocate what a steady state holds
            await run.log_metric("loss", step / 7, step=step)
        await anyio.sleep(0.3)
        base = _rss_bytes()
        for step in range(800_000):
            await run.log_metric("loss", step / 7, step=step)
            if step % 50_000 == 0:
                stats = run.ingest_stats
                peak_held = max(peak_held, stats.queued + stats.in_flight)
                peak_rss = max(peak_rss, _rss_bytes() - base)
                await anyio.sleep(0)
        stats = run.ingest_stats
    assert peak_held <= bounded.queue_capacity + (4 + 1) * 10  # queue, 4 in flight, 1 waiting for a slot
    assert stats.dropped > 700_000
    assert peak_rss < 40 * 2**20, f"RSS grew by {peak_rss / 2**20:.0f} MiB"


async def test_a_final_status_that_could_not_be_saved_is_saved_by_sagerun_sync(metrics_fake, moto_url, sagemaker,
                                                                                tmp_path):
    with SwitchProxy(moto_url) as proxy:
        session = sagerun.Session(region="us-east-1", endpoint_url=proxy.url, metrics_endpoint_url=metrics_fake.url,
                                  request_timeout=0.5, retry_initial=0.01, retry_max_backoff=0.05, retry_deadline=1.0,
                                  close_timeout=3.0, store=str(tmp_path))
        async with sagerun.Run("rel", "saved-later", session=session) as run:
            run.log_parameter("lr", 0.1)
            await log_range(run, 20)
            proxy.set("down")
        assert sagemaker.describe_trial_component(TrialComponentName="rel-saved-later")["Status"]["PrimaryStatus"] \
            == "InProgress"
        proxy.set("up")
    env = {**os.environ, "AWS_ENDPOINT_URL": moto_url, "AWS_ENDPOINT_URL_SAGEMAKER_METRICS": metrics_fake.url}
    done = subprocess.run([sys.executable, "-m", "sagerun", "sync", "--store", str(tmp_path), "--json"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["saved"] == ["rel/saved-later"]
    described = sagemaker.describe_trial_component(TrialComponentName="rel-saved-later")
    assert described["Status"]["PrimaryStatus"] == "Completed"
    assert described["Parameters"] == {"lr": {"NumberValue": 0.1}}
    again = subprocess.run([sys.executable, "-m", "sagerun", "sync", "--store", str(tmp_path), "--json"], env=env,
                           capture_output=True, text=True, timeout=60)
    assert json.loads(again.stdout)["saved"] == []
