"""Backends · batchPutMetrics on a lean path: the body built once by orjson, signed by a SigV4 for this one shape.

A botocore client spends about 1 ms of CPU per request serialising, validating and signing through
its generic machinery (measured in docs/performance.md); this one request is sent thousands of times
a minute from the training process, so it gets a path of its own. Credentials, endpoint and region
still come from the botocore session and client, so every AWS convention keeps working.
"""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit
from typing import Any, Sequence

import aiohttp
import orjson
from aiohttp.helpers import get_env_proxy_for_url
from yarl import URL

from .._model.errors import TransportError, classify
from .._model.points import Point
from .._model.answers import ItemError
from .sigv4 import Signer

#: points one BatchPutMetrics request may carry
BATCH_LIMIT = 10
_SIGNING_NAME = "sagemaker"  # the metrics API is signed as SageMaker, not as its endpoint prefix


class MetricsHTTP:
    """Sends ``BatchPutMetrics`` requests through one pooled aiohttp session."""

    def __init__(self, endpoint_url: str, region: str, credentials: Any, *, connections: int,
                 timeout: float) -> None:
        self._url = endpoint_url.rstrip("/") + "/BatchPutMetrics"
        self._region = region
        self.credentials = credentials
        self._signer = Signer(host(self._url), _SIGNING_NAME, region)
        # The proxy settings are read once here: aiohttp's trust_env would look them (and ~/.netrc)
        # up again in a worker thread for every request, two thread hops per 10 points.
        try:
            self._proxy, self._proxy_auth = get_env_proxy_for_url(URL(self._url))
        except LookupError:
            self._proxy, self._proxy_auth = None, None
        self._http = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=connections, ttl_dns_cache=300),
            timeout=aiohttp.ClientTimeout(total=timeout),
            skip_auto_headers=("User-Agent",),
        )

    async def aclose(self) -> None:
        await self._http.close()

    async def put(self, trial_component_name: str, points: Sequence[Point]) -> list[ItemError]:
        """Send one request; return the items refused.

        Raises:
            TransportError: the request failed as a whole (retryable for throttling, 5xx, network).
        """
        body = orjson.dumps({
            "TrialComponentName": trial_component_name,
            "MetricData": [
                {"MetricName": name, "Timestamp": timestamp, "Value": value}
                if step is None else
                {"MetricName": name, "Timestamp": timestamp, "Step": step, "Value": value}
                for name, value, step, timestamp in points
            ],
        })
        # Refreshable credentials renew themselves when asked for a frozen copy.
        headers = self._signer.headers("PUT", "/BatchPutMetrics", body, await self.credentials.get_frozen_credentials())
        try:
            async with self._http.put(self._url, data=body, headers=headers, proxy=self._proxy,
                                      proxy_auth=self._proxy_auth) as response:
                payload = await response.read()
                status = response.status
                error_type = response.headers.get("x-amzn-ErrorType", "")
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            raise TransportError(f"connection failed: {type(exc).__name__}: {exc}", retryable=True,
                                 unanswered=not isinstance(exc, aiohttp.ClientConnectorError)) from exc
        document = _json(payload)
        if status == 200:
            return [ItemError(int(e["MetricIndex"]), str(e["Code"])) for e in document.get("Errors") or ()]
        code = (error_type or str(document.get("__type", ""))).split(":")[0].rsplit("#", 1)[-1]
        raise classify(status, code, str(document.get("message") or document.get("Message") or ""))


def host(url: str) -> str:
    """The Host header as botocore signs it: the port only when it is not the scheme's default."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    if parts.port is not None and parts.port != {"http": 80, "https": 443}.get(parts.scheme):
        host = f"{host}:{parts.port}"
    return host


def _json(payload: bytes) -> dict[str, Any]:
    try:
        document = orjson.loads(payload) if payload else {}
    except orjson.JSONDecodeError:
        return {}
    return document if isinstance(document, dict) else {}
