"""Recording fake of the SageMaker Metrics ``BatchPutMetrics`` API, with fault injection, which
also answers ``BatchGetMetrics`` from what it recorded (``metrics_reads``).

Tests: ``with MetricsFake() as fake:`` serves ``fake.url`` from a daemon thread.  Benchmarks:
``python tests/metrics_fake.py --port 0`` prints its URL on one line and is driven over
``POST /_fake/reset``, ``POST /_fake/config``, ``GET /_fake/points``, ``GET /_fake/stats``.

Requests are checked against botocore's service model (required members, lengths, patterns,
list bounds) plus what the real service adds: at most 10 items, finite values, 32-bit steps,
whole-string pattern matches (the model's patterns lack ``$``).  An invalid request is a
violation, answered 400 ValidationException; it never consumes ``fail_next``.

What botocore 1.40 / aiobotocore 2.25 actually send:
  * ``Timestamp`` as an *int* of whole epoch seconds (the fraction is truncated).  For
    millisecond floats, a handler on ``creating-serializer.metrics.sagemaker`` (endpoint
    prefix, not service name) must set ``serializer_kwargs["timestamp_precision"] = "millisecond"``.
  * NaN/Infinity as the JSON strings "NaN", "Infinity", "-Infinity".
  * ``retries={"max_attempts": 1}`` means one *retry* (2 requests), in standard mode too;
    ``total_max_attempts=1`` means one request.  And aiohttp itself resends a PUT once when
    a *reused* keep-alive connection is reset, unseen by botocore: one ``reset`` on a warm
    client goes unnoticed (the fake counts 2 requests); ``fail_next={"reset": 2}`` or
    ``down=True`` surfaces.

Throughput (aiohttp client, keep-alive, 10 points/request, 8 concurrent, fake in its own
process, noisy 2-vCPU container): ~3,300 requests/s (~33k points/s), within ~10% of a bare
aiohttp handler that returns ``{}``; parsing + validating a request costs ~35 us.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import itertools
import math
import random
import re
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from datetime import datetime, timezone
from typing import Any

import botocore.session
import orjson
from aiohttp import web

import metrics_reads
from threaded_server import ThreadedServer

_JSON = "application/json"
_MAX_ITEMS = 10  # the real limit, whatever the model says
_INT32_MAX = 2**31 - 1  # "integer" shapes are 32-bit even though the model gives no max
_NON_FINITE = ("NaN", "Infinity", "-Infinity")
# kind -> (status, __type, message).  "reset" and "timeout" have no error body.
_ERRORS = {
    "throttle": (400, "ThrottlingException", "Rate exceeded"),
    "throttle_429": (429, "ThrottlingException", "Rate exceeded"),
    "rate_limited": (400, "ThrottlingException", "Rate exceeded"),  # beyond Faults.rate_limit
    "500": (500, "InternalFailure", "An internal error occurred"),
    "503": (503, "ServiceUnavailable", "Service unavailable"),
}
_RATES = {"reset_rate": "reset", "throttle_rate": "throttle", "throttle_429_rate": "throttle_429",
          "error_500_rate": "500", "error_503_rate": "503", "timeout_rate": "timeout"}
_FAIL_KINDS = (*_ERRORS, "reset", "timeout")
Point = tuple[str, str, float, "int | None", float]  # trial_component, name, value, step, timestamp


@dataclass(frozen=True)
class _Str:
    min: int
    max: int
    pattern: re.Pattern[str] | None

    def check(self, value: Any, where: str) -> str | None:
        if not isinstance(value, str):
            return f"{where}: expected a string, got {value!r}"
        if not self.min <= len(value) <= self.max:
            return f"{where}: length {len(value)} not in [{self.min}, {self.max}]"
        if self.pattern and not self.pattern.fullmatch(value):
            return f"{where}: {value!r} does not match {self.pattern.pattern!r}"
        return None


@dataclass(frozen=True)
class Contract:
    method: str
    path: str
    members: frozenset[str]
    required: tuple[str, ...]
    trial_component: _Str
    min_items: int
    max_items: int
    item_members: frozenset[str]
    item_required: tuple[str, ...]
    metric_name: _Str
    min_step: int
    item_codes: frozenset[str]


@functools.lru_cache(maxsize=1)
def contract() -> Contract:
    """The BatchPutMetrics contract, read from botocore's service model."""
    model = botocore.session.get_session().get_service_model("sagemaker-metrics")
    op = model.operation_model("BatchPutMetrics")

    def string(shape: Any) -> _Str:
        m = shape.metadata
        return _Str(m.get("min", 0), m.get("max", _INT32_MAX),
                    re.compile(m["pattern"]) if "pattern" in m else None)

    req, items = op.input_shape, op.input_shape.members["MetricData"]
    item = items.member
    return Contract(
        method=op.http["method"], path=op.http["requestUri"], members=frozenset(req.members),
        required=tuple(req.required_members), trial_component=string(req.members["TrialComponentName"]),
        min_items=items.metadata.get("min", 1),
        max_items=min(items.metadata.get("max", _MAX_ITEMS), _MAX_ITEMS),
        item_members=frozenset(item.members), item_required=tuple(item.required_members),
        metric_name=string(item.members["MetricName"]),
        min_step=item.members["Step"].metadata.get("min", 0),
        item_codes=frozenset(op.output_shape.members["Errors"].member.members["Code"].enum),
    )


def _timestamp(value: Any) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, str):
        try:  # fromisoformat only learned "Z" in 3.11
            dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return (dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)).timestamp()
    return None


def validate(body: Any) -> tuple[str | None, list[Point]]:
    """Return (violation or None, points) for a decoded BatchPutMetrics body."""
    c = contract()
    if not isinstance(body, dict):
        return "body is not a JSON object", []
    if unknown := body.keys() - c.members:
        return f"unknown members {sorted(unknown)}", []
    if missing := [k for k in c.required if k not in body]:
        return f"missing required {missing}", []
    tc = body["TrialComponentName"]
    if err := c.trial_component.check(tc, "TrialComponentName"):
        return err, []
    data = body["MetricData"]
    if not isinstance(data, list) or not c.min_items <= len(data) <= c.max_items:
        got = len(data) if isinstance(data, list) else data
        return f"MetricData: expected a list of {c.min_items}..{c.max_items} items, got {got!r}", []
    points: list[Point] = []
    for i, item in enumerate(data):
        at = f"MetricData[{i}]"
        if not isinstance(item, dict):
            return f"{at}: not an object", []
        if unknown := item.keys() - c.item_members:
            return f"{at}: unknown members {sorted(unknown)}", []
        if missing := [k for k in c.item_required if k not in item]:
            return f"{at}: missing required {missing}", []
        if err := c.metric_name.check(item["MetricName"], f"{at}.MetricName"):
            return err, []
        if (ts := _timestamp(item["Timestamp"])) is None:
            return f"{at}.Timestamp: not epoch seconds or ISO8601: {item['Timestamp']!r}", []
        value = item["Value"]
        if value in _NON_FINITE:
            return f"{at}.Value: non-finite {value!r} is refused by SageMaker", []
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            return f"{at}.Value: not a number: {value!r}", []
        step = item.get("Step")
        if step is not None and (type(step) is not int or not c.min_step <= step <= _INT32_MAX):
            return f"{at}.Step: expected an int in [{c.min_step}, {_INT32_MAX}], got {step!r}", []
        points.append((tc, item["MetricName"], float(value), step, ts))
    return None, points


@dataclass
class Faults:
    latency_ms: float = 0.0
    throttle_rate: float = 0.0
    throttle_429_rate: float = 0.0
    error_500_rate: float = 0.0
    error_503_rate: float = 0.0
    reset_rate: float = 0.0
    timeout_rate: float = 0.0
    timeout_s: float = 1.0
    item_error_rates: dict[str, float] = field(default_factory=dict)
    down: bool = False
    fail_next: dict[str, int] = field(default_factory=dict)
    rate_limit: float = 0.0
    """Requests per second the account may make (a token bucket holding a tenth of a second's worth,
    at least one); beyond it requests are throttled, as a quota does. 0: no limit."""

    def updated(self, **changes: Any) -> Faults:
        """A validated copy with `changes` applied (dicts are copied: fail_next counts down)."""
        if unknown := changes.keys() - {f.name for f in fields(self)}:
            raise ValueError(f"unknown fault settings {sorted(unknown)}")
        new = replace(self, **changes)
        new.item_error_rates, new.fail_next = dict(new.item_error_rates), dict(new.fail_next)
        if any(not 0 <= p <= 1 for p in [*(getattr(new, r) for r in _RATES), *new.item_error_rates.values()]):
            raise ValueError("rates must be within [0, 1]")
        if bad := new.item_error_rates.keys() - contract().item_codes:
            raise ValueError(f"unknown item error codes {sorted(bad)}")
        if bad := new.fail_next.keys() - set(_FAIL_KINDS):
            raise ValueError(f"unknown fail_next kinds {sorted(bad)}; use {_FAIL_KINDS}")
        return new


def _error(status: int, type_: str, message: str, request_id: str) -> web.Response:
    return web.Response(status=status, body=orjson.dumps({"__type": type_, "message": message}),
                        content_type=_JSON,
                        headers={"x-amzn-ErrorType": type_, "x-amzn-RequestId": request_id})


class MetricsFake(ThreadedServer):
    """Fake sagemaker-metrics endpoint; every accessor is safe to call from any thread.

    Constructor faults are the baseline that reset() returns to (the CLI's --latency-ms).
    """

    thread_name = "metrics-fake"

    def __init__(self, port: int = 0, seed: int = 0, **faults: Any) -> None:
        self._port, self._seed = port, seed
        self._base = Faults().updated(**faults)
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        super().__init__()
        self.reset()

    def reset(self) -> None:
        """Forget everything recorded; restore the constructor's faults and seed."""
        with self._lock:
            self._points: list[Point] = []
            self._system_points = 0
            self.reads = 0
            """BatchGetMetrics requests answered"""
            self._requests = 0
            self._violations: list[str] = []
            self._fault_counts: dict[str, int] = {}
            self._faults = self._base.updated()
            self._rng = random.Random(self._seed)
            self._tokens, self._refilled = 0.0, time.monotonic()

    def configure(self, seed: int | None = None, **faults: Any) -> None:
        """Change only the given fault settings; `seed` restarts the random sequence."""
        with self._lock:
            self._faults = self._faults.updated(**faults)
            if seed is not None:
                self._rng = random.Random(seed)

    @property
    def points(self) -> list[dict[str, Any]]:
        with self._lock:
            points = list(self._points)
        return [{"trial_component": t, "name": n, "value": v, "step": s, "timestamp": ts}
                for t, n, v, s, ts in points]

    @property
    def requests(self) -> int:
        return self.stats["requests"]

    @property
    def violations(self) -> list[str]:
        return self.stats["violations"]

    @property
    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {"requests": self._requests, "points": len(self._points), "distinct_points": len(set(self._points)),
                    "system_points": self._system_points,
                    "violations": list(self._violations), "faults": dict(self._fault_counts)}

    async def serve(self, started: Callable[[str], object] = lambda url: None) -> None:
        """Serve on the running loop until stop(); call `started(url)` once listening."""
        self._loop, self._stopped = asyncio.get_running_loop(), asyncio.Event()
        app = web.Application()
        for method, action in (("POST", "reset"), ("POST", "config"), ("GET", "points"), ("GET", "stats")):
            app.router.add_route(method, f"/_fake/{action}", self._control)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        # aiohttp sets TCP_NODELAY on accepted sockets and keeps connections alive by itself.
        # Short shutdown_timeout: "timeout" faults leave handlers sleeping (asyncio.run's
        # exit cancels them).
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
        await runner.setup()
        try:
            await web.TCPSite(runner, "127.0.0.1", self._port).start()
            self.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
            started(self.url)
            await self._stopped.wait()
        finally:
            await runner.cleanup()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        request_id = f"fake-{next(self._ids)}"
        body = await request.read()
        c = contract()
        if (request.method, request.path) == ("POST", "/BatchGetMetrics"):
            return self._read(body, request_id)
        if (request.method, request.path) != (c.method, c.path):
            with self._lock:
                self._violations.append(f"unknown operation {request.method} {request.path}")
            return _error(404, "UnknownOperationException", "Unknown operation", request_id)
        try:
            violation, points = validate(orjson.loads(body))
        except orjson.JSONDecodeError as exc:
            violation, points = f"body is not valid JSON: {exc}", []

        errors = []
        with self._lock:  # every decision for this request, atomically
            self._requests += 1
            f = self._faults
            kind = None
            if violation:
                self._violations.append(violation)
            if f.down:
                kind = "down"
            elif not violation and f.rate_limit and not self._take_token(f.rate_limit):
                kind = "rate_limited"
            elif not violation:
                kind = next((k for k, n in f.fail_next.items() if n > 0), None)
                if kind:
                    f.fail_next[kind] -= 1
                else:  # draw only for enabled rates, so enabling one keeps the others' sequence
                    kind = next((k for r, k in _RATES.items()
                                 if getattr(f, r) and self._rng.random() < getattr(f, r)), None)
                if kind in (None, "timeout"):  # the service did the work
                    recorded = []
                    for i, point in enumerate(points):
                        code = next((code for code, p in f.item_error_rates.items()
                                     if self._rng.random() < p), None)
                        if code:
                            errors.append({"Code": code, "MetricIndex": i})
                            self._count(f"item:{code}")
                        else:
                            recorded.append(point)
                    self._points.extend(recorded)
                    self._system_points += sum(1 for p in recorded if p[1].startswith("system/"))
            if kind:
                self._count(kind)

        if f.latency_ms:
            await asyncio.sleep(f.latency_ms / 1000)
        if kind in ("down", "reset"):
            if request.transport:
                request.transport.abort()
            # How aiohttp itself unwinds a handler whose client vanished: no response, no log.
            raise asyncio.CancelledError
        if violation:
            return _error(400, "ValidationException", violation, request_id)
        if kind in _ERRORS:
            return _error(*_ERRORS[kind], request_id)
        if kind == "timeout":
            await asyncio.sleep(f.timeout_s)
        return web.Response(body=orjson.dumps({"Errors": errors}) if errors else b"{}",
                            content_type=_JSON, headers={"x-amzn-RequestId": request_id})

    def _read(self, body: bytes, request_id: str) -> web.Response:
        """BatchGetMetrics from what was recorded (``metrics_reads``); not counted as a request."""
        try:
            document = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            return _error(400, "ValidationException", f"body is not valid JSON: {exc}", request_id)
        violation = metrics_reads.check(document)
        with self._lock:
            self.reads += 1
            if violation:
                self._violations.append(violation)
            points = list(self._points)
        if violation:
            return _error(400, "ValidationException", violation, request_id)
        return web.Response(body=orjson.dumps(metrics_reads.answer(points, document)), content_type=_JSON,
                            headers={"x-amzn-RequestId": request_id})

    def _take_token(self, rate: float) -> bool:  # caller holds the lock
        now = time.monotonic()
        burst = max(1.0, rate / 10)
        self._tokens = min(burst, self._tokens + (now - self._refilled) * rate)
        self._refilled = now
        if self._tokens < 1:
            return False
        self._tokens -= 1
        return True

    def _count(self, kind: str) -> None:  # caller holds the lock
        self._fault_counts[kind] = self._fault_counts.get(kind, 0) + 1

    async def _control(self, request: web.Request) -> web.Response:
        action = request.path.rsplit("/", 1)[1]
        result: Any = {}
        if action == "reset":
            self.reset()
        elif action == "config":
            try:
                self.configure(**orjson.loads(await request.read()))
            except (ValueError, TypeError) as exc:  # JSONDecodeError is a ValueError
                return web.Response(status=400, body=orjson.dumps({"message": str(exc)}),
                                    content_type=_JSON)
        else:
            result = self.points if action == "points" else self.stats
        return web.Response(body=orjson.dumps(result), content_type=_JSON)


async def _main(port: int, latency_ms: float) -> None:
    fake = MetricsFake(port=port, latency_ms=latency_ms)

    def started(url: str) -> None:
        assert fake._stopped
        for sig in (signal.SIGINT, signal.SIGTERM):
            asyncio.get_running_loop().add_signal_handler(sig, fake._stopped.set)
        print(url, flush=True)

    await fake.serve(started)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Fake SageMaker Metrics endpoint")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    args = parser.parse_args()
    asyncio.run(_main(args.port, args.latency_ms))
