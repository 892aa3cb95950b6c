"""Backends · the MLflow REST API on a lean path: aiohttp and orjson, with MLflow's own ways to
authenticate, or SigV4 for SageMaker's managed MLflow.

The tracking URI decides how requests are addressed and signed:

* ``http(s)://host[/prefix]``: MLflow's conventions, read from the environment as its client
  reads them: ``MLFLOW_TRACKING_TOKEN`` (a bearer token), ``MLFLOW_TRACKING_USERNAME`` and
  ``MLFLOW_TRACKING_PASSWORD`` (basic auth), ``MLFLOW_TRACKING_INSECURE_TLS``,
  ``MLFLOW_TRACKING_SERVER_CERT_PATH`` (a CA bundle) and ``MLFLOW_TRACKING_CLIENT_CERT_PATH``.
* a SageMaker ARN, ``arn:aws:sagemaker:<region>:<account>:mlflow-tracking-server/<name>`` or
  ``…:mlflow-app/<id>``: the endpoint and header the ``sagemaker-mlflow`` plugin uses, each
  request signed with SigV4 (service ``sagemaker-mlflow``, or ``sagemaker`` for an app) from the
  AWS credential chain, its body's hash in ``X-Amz-Content-SHA256`` as the plugin sends it;
  ``SAGEMAKER_MLFLOW_CUSTOM_ENDPOINT`` overrides the endpoint, as it does for the plugin.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import ssl
from typing import Any, Mapping, NamedTuple, Sequence
from urllib.parse import urlsplit

import aiohttp
import orjson
from yarl import URL

from .._model.answers import ItemError
from .._model.errors import TransportError, classify
from .._model.points import Point
from .metrics_http import host
from .sigv4 import Signer, canonical_query

API = "/api/2.0/mlflow/"
ARTIFACTS = "/api/2.0/mlflow-artifacts/artifacts/"
#: by the kind of ARN: the header naming the managed server, and the service its requests are signed for
_ARN_HEADERS = {"mlflow-tracking-server": "x-mlflow-sm-tracking-server-arn", "mlflow-app": "x-sm-mlflow-app-arn"}
_SIGNING_NAMES = {"mlflow-tracking-server": "sagemaker-mlflow", "mlflow-app": "sagemaker"}


class MlflowError(Exception):
    """An MLflow server refused a request for good; ``code`` is its ``error_code``."""

    def __init__(self, message: str, code: str, status: int) -> None:
        super().__init__(message)
        self.code = code
        self.status = status


class Address(NamedTuple):
    """Where requests go (``base`` has no trailing slash) and, for a SageMaker server, its ARN."""

    base: str
    arn: str | None = None
    region: str | None = None


def address(tracking_uri: str) -> Address:
    """The ``Address`` of ``tracking_uri``.

    Raises:
        ValueError: it is neither an ``http(s)://`` URL nor a SageMaker MLflow ARN.
    """
    if tracking_uri.startswith("arn:"):
        arn = tracking_uri.split("#", 1)[0]  # the plugin's "#<role arn>" suffix: assuming it is not done here
        parts = arn.split(":", 5)
        kind = parts[5].split("/", 1)[0] if len(parts) == 6 else ""
        if len(parts) != 6 or parts[2] != "sagemaker" or kind not in _ARN_HEADERS or not parts[3]:
            raise ValueError(f"tracking_uri {tracking_uri!r} is not the ARN of a SageMaker MLflow tracking server "
                             "or app (arn:aws:sagemaker:<region>:<account>:mlflow-tracking-server/<name>)")
        region = parts[3]
        default = (f"https://{region}.experiments.sagemaker.aws" if kind == "mlflow-tracking-server"
                   else f"https://mlflow.sagemaker.{region}.app.aws")
        return Address(os.environ.get("SAGEMAKER_MLFLOW_CUSTOM_ENDPOINT", default).rstrip("/"), arn, region)
    if not tracking_uri.startswith(("http://", "https://")):
        raise ValueError(f"tracking_uri must be an http(s):// URL or a SageMaker MLflow ARN; got {tracking_uri!r} "
                         "(file and database URIs need MLflow's own client)")
    return Address(tracking_uri.rstrip("/"))


def _ssl_context() -> ssl.SSLContext | bool:
    if os.environ.get("MLFLOW_TRACKING_INSECURE_TLS", "").lower() in ("1", "true"):
        return False
    cafile = os.environ.get("MLFLOW_TRACKING_SERVER_CERT_PATH") or None
    client_cert = os.environ.get("MLFLOW_TRACKING_CLIENT_CERT_PATH") or None
    if cafile is None and client_cert is None:
        return True
    context = ssl.create_default_context(cafile=cafile)
    if client_cert:
        context.load_cert_chain(client_cert)
    return context


def _auth_header() -> dict[str, str]:
    # As MLflow's client: a user and password win over a token.
    user, password = os.environ.get("MLFLOW_TRACKING_USERNAME"), os.environ.get("MLFLOW_TRACKING_PASSWORD")
    if user and password:
        return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}
    token = os.environ.get("MLFLOW_TRACKING_TOKEN")
    return {"Authorization": f"Bearer {token}"} if token else {}


class MlflowREST:
    """Calls of the MLflow REST API through one pooled aiohttp session; ``credentials`` (botocore's)
    only for a SageMaker ARN."""

    def __init__(self, tracking_uri: str, *, credentials: Any = None, connections: int, timeout: float) -> None:
        self.address = address(tracking_uri)
        self.credentials = credentials
        parts = urlsplit(self.address.base)
        self._origin, self._prefix = f"{parts.scheme}://{parts.netloc}", parts.path
        self._signer: Signer | None = None
        if self.address.arn:
            kind = self.address.arn.split(":", 5)[5].split("/", 1)[0]
            self._static = {_ARN_HEADERS[kind]: self.address.arn}
            self._signer = Signer(host(self.address.base), _SIGNING_NAMES[kind], self.address.region or "")
        else:
            self._static = _auth_header()
        self._http = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=connections, ttl_dns_cache=300, ssl=_ssl_context()),
            timeout=aiohttp.ClientTimeout(total=timeout),
            skip_auto_headers=("User-Agent",),
        )

    async def aclose(self) -> None:
        await self._http.close()

    async def call(self, method: str, endpoint: str, body: Mapping[str, Any] | None = None, *,
                   query: Mapping[str, str] | None = None) -> dict[str, Any]:
        """``method`` ``api/2.0/mlflow/<endpoint>`` with a JSON body or a query; the answer's JSON.

        Raises:
            TransportError: throttled, a server error or the network (retryable).
            MlflowError: refused for good (its ``error_code`` in ``code``).
        """
        data = orjson.dumps(body) if body is not None else b""
        status, payload = await self.send(method, API + endpoint, data, query=query)
        return _answer(status, payload, endpoint)

    async def send(self, method: str, path: str, data: bytes, *, query: Mapping[str, str] | None = None,
                   content_type: str | None = None) -> tuple[int, bytes]:
        """One request to ``path`` under the tracking URI; its status and body, whatever the status.

        Raises:
            TransportError: no answer (connection failed, timed out).
        """
        encoded = canonical_query(query or {})
        path = self._prefix + path
        headers = dict(self._static)
        if self._signer is not None:
            frozen = await self.credentials.get_frozen_credentials()
            headers["x-amz-content-sha256"] = hashlib.sha256(data).hexdigest()
            headers = self._signer.headers(method, path, data, frozen, query=encoded, extra=headers)
            if content_type:  # signed as JSON; the artifact API takes any body, as the plugin sends it
                headers["content-type"] = content_type
        elif data:
            headers["Content-Type"] = content_type or "application/json"
        # The URL is given encoded, so that aiohttp sends the very query that was signed.
        url = URL(self._origin + path + (f"?{encoded}" if encoded else ""), encoded=True)
        try:
            async with self._http.request(method, url, data=data or None,
                                          headers=headers) as response:
                return response.status, await response.read()
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            raise TransportError(f"connection failed: {type(exc).__name__}: {exc}", retryable=True,
                                 unanswered=not isinstance(exc, aiohttp.ClientConnectorError)) from exc


#: metrics one ``runs/log-batch`` request may carry (MLflow's MAX_METRICS_PER_BATCH)
METRICS_PER_BATCH = 1000


async def log_metrics(rest: MlflowREST, run_id: str, points: Sequence[Point]) -> list[ItemError]:
    """Send at most ``METRICS_PER_BATCH`` points to run ``run_id`` in one ``runs/log-batch``.

    Raises:
        TransportError: the request failed as a whole; log-batch takes all or nothing, so a
            refusal is the whole request's (not retryable).
    """
    body = {"run_id": run_id, "metrics": [
        {"key": name, "value": value, "timestamp": int(timestamp * 1000), "step": step or 0}
        for name, value, step, timestamp in points]}
    try:
        await rest.call("POST", "runs/log-batch", body)
    except MlflowError as exc:
        raise TransportError(str(exc), retryable=False) from exc
    return []


class MlflowSink:
    """A drain's view of ``log_metrics``: what a sender process sends through."""

    max_batch = METRICS_PER_BATCH
    max_in_flight: int | None = None

    def __init__(self, rest: MlflowREST) -> None:
        self.rest = rest

    async def put_metrics(self, trial_component_name: str, points: Sequence[Point]) -> Sequence[ItemError]:
        return await log_metrics(self.rest, trial_component_name, points)


def _answer(status: int, payload: bytes, endpoint: str) -> dict[str, Any]:
    try:
        document = orjson.loads(payload) if payload else {}
    except orjson.JSONDecodeError:
        document = {}
    if not isinstance(document, dict):
        document = {}
    if status == 200:
        return document
    code = str(document.get("error_code", ""))
    message = str(document.get("message", "")) or payload[:200].decode(errors="replace")
    error = classify(status, code, message)
    if error.retryable:
        raise error
    raise MlflowError(f"MLflow refused {endpoint}: {status} {code}: {message}", code, status)
