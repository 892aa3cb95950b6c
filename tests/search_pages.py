"""SageMaker's Search as AWS pages and throttles it, in front of moto, which does neither; and
answers moto cannot give, patched in (``patches``: a call's answer, changed by a function).

``with SearchPages(moto_url, throttle_every=2) as proxy:`` serves ``proxy.url``: every call goes
to moto as it came, but a ``SageMaker.Search`` is answered a page of ``MaxResults`` at a time
(``NextToken`` the offset of the next page, as an opaque string), and every ``throttle_every``-th
Search is answered ``ThrottlingException`` (HTTP 400, SageMaker's JSON error shape) before moto
sees it. ``searches`` and ``throttled`` count what arrived, and ``calls`` keeps the other calls. ``patches={"DescribeTrainingJob": f}``
answers that call with ``f(moto's answer)``: a training job of a tuning job, say, whose
``TuningJobArn`` moto has no way to set.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import aiohttp
import orjson
from aiohttp import web

from threaded_server import ThreadedServer

SEARCH = "SageMaker.Search"


class SearchPages(ThreadedServer):
    thread_name = "search-pages"

    def __init__(self, upstream: str, throttle_every: int = 0,
                 patches: dict[str, Callable[[dict], dict]] | None = None) -> None:
        super().__init__()
        self.upstream = upstream
        self.throttle_every = throttle_every
        self.patches = patches or {}
        self.calls: list[tuple[str, dict]] = []
        """every call but Search, as ``(operation, request body)``"""
        self.searches = 0
        self.throttled = 0
        self._lock = threading.Lock()

    async def serve(self, started: Callable[[str], object] = lambda url: None) -> None:
        app = web.Application(client_max_size=64 * 1024**2)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        async with aiohttp.ClientSession(trust_env=False, auto_decompress=False) as self._session:
            await self.serve_app(app, started)

    async def _forward(self, request: web.Request, body: bytes) -> tuple[int, bytes, dict[str, str]]:
        headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host", "content-length")}
        async with self._session.request(request.method, self.upstream + request.raw_path, data=body,
                                         headers=headers) as answer:
            kept = {k: v for k, v in answer.headers.items() if k.lower() in ("content-type", "x-amzn-requestid")}
            return answer.status, await answer.read(), kept

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        target = request.headers.get("X-Amz-Target", "")
        if target != SEARCH:
            with self._lock:
                self.calls.append((target.partition(".")[2], orjson.loads(body) if body else {}))
            status, payload, headers = await self._forward(request, body)
            patch = self.patches.get(target.partition(".")[2])
            if patch is not None and status == 200:
                payload = orjson.dumps(patch(orjson.loads(payload)))
            return web.Response(status=status, body=payload, headers=headers)
        with self._lock:
            self.searches += 1
            throttle = self.throttle_every and self.searches % self.throttle_every == 0
            self.throttled += bool(throttle)
        if throttle:
            return web.Response(status=400, content_type="application/x-amz-json-1.1", body=orjson.dumps(
                {"__type": "ThrottlingException", "message": "Rate exceeded"}))
        asked = orjson.loads(body)
        size, offset = int(asked.pop("MaxResults", 100)), int(asked.pop("NextToken", "0") or 0)
        status, payload, headers = await self._forward(request, orjson.dumps(asked))
        if status != 200:
            return web.Response(status=status, body=payload, headers=headers)
        answer = orjson.loads(payload)
        results = answer.get("Results") or []
        for result in results:  # moto gives a run without metrics "Metrics": [{}]; SageMaker, none
            component = result.get("TrialComponent") or {}
            if component.get("Metrics") == [{}]:
                component["Metrics"] = []
        page = {"Results": results[offset:offset + size]}
        if offset + size < len(results):
            page["NextToken"] = str(offset + size)
        return web.Response(status=200, body=orjson.dumps(page), headers=headers)
