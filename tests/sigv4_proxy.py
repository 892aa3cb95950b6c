"""Stand-in for SageMaker's managed MLflow endpoint: checks SigV4 like AWS, then forwards to a real MLflow.

``with SigV4Proxy(mlflow_url, "testing", "testing") as proxy:`` serves ``proxy.url`` from a daemon
thread.  A request must carry ``x-mlflow-sm-tracking-server-arn`` and a SigV4 ``Authorization`` for
service ``sagemaker-mlflow`` in ``region`` that botocore, recomputing it from what arrived, agrees
with; otherwise it is answered 403 with the reason and never reaches MLflow.

How the signature is recomputed, and why:
  * The query is canonicalized as AWS does, from the parameters the server will read (decoded the
    way MLflow's Werkzeug decodes them, ``+`` as a space), then percent-encoded strictly and sorted;
    so a client must sign exactly the parameters it sends, however it encodes them on the wire.
    The refusal says so when signing the query as sent would have matched.
  * The path is taken as sent, undecoded, as botocore signs it for services other than S3.
  * The body is hashed as received; a signed ``x-amz-content-sha256`` must match it.
  * The client's own ``X-Amz-Date`` is used, not the clock (but it must be within 15 minutes, as
    AWS requires).  The botocore pieces are called directly rather than ``add_auth`` with a patched
    ``get_current_datetime``: that patch is process-wide, and the client under test signs in this
    same process.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import re
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

import aiohttp
import orjson
import yarl
from aiohttp import web
from botocore.auth import SIGV4_TIMESTAMP, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import ReadOnlyCredentials

from threaded_server import ThreadedServer

SERVICE = "sagemaker-mlflow"
ARN_HEADER = "x-mlflow-sm-tracking-server-arn"
_MAX_SKEW = datetime.timedelta(minutes=15)
_AUTH = re.compile(r"AWS4-HMAC-SHA256 Credential=(?P<credential>[^,\s]+),\s*SignedHeaders=(?P<signed>[^,\s]+),"
                   r"\s*Signature=(?P<signature>[0-9a-f]{64})$")


class Refused(Exception):
    def __init__(self, message: str, error_type: str = "InvalidSignatureException") -> None:
        super().__init__(message)
        self.error_type = error_type


class SigV4Proxy(ThreadedServer):
    """Verifying reverse proxy; ``accepted``, ``refused`` and ``refusals`` are safe to read from any thread."""

    thread_name = "sigv4-proxy"

    def __init__(self, upstream_url: str, access_key: str, secret_key: str, region: str = "us-east-1",
                 token: str | None = None) -> None:
        self.upstream_url = upstream_url.rstrip("/")
        self.region = region
        self._credentials = ReadOnlyCredentials(access_key, secret_key, token)
        self._lock = threading.Lock()
        self._accepted = 0
        self._refusals: list[str] = []
        self._session: aiohttp.ClientSession | None = None
        super().__init__()

    @property
    def accepted(self) -> int:
        """Requests whose signature held, forwarded to MLflow (whatever MLflow then answered)."""
        with self._lock:
            return self._accepted

    @property
    def refused(self) -> int:
        with self._lock:
            return len(self._refusals)

    @property
    def refusals(self) -> list[str]:
        """Why each refused request was refused, in order."""
        with self._lock:
            return list(self._refusals)

    async def serve(self, started: Callable[[str], object] = lambda url: None) -> None:
        app = web.Application(client_max_size=1024**3)  # artifacts go through here too
        app.router.add_route("*", "/{tail:.*}", self._handle)
        # No proxy variables, no cookies: every call goes to the upstream as it came.
        async with aiohttp.ClientSession(trust_env=False, cookie_jar=aiohttp.DummyCookieJar(),
                                         auto_decompress=False) as self._session:
            await self.serve_app(app, started)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        try:
            if not request.headers.get(ARN_HEADER):
                raise Refused(f"missing header {ARN_HEADER}", "PERMISSION_DENIED")
            self.verify(request.method, request.raw_path, request.headers, body)
        except Refused as refusal:
            with self._lock:
                self._refusals.append(str(refusal))
            return web.Response(status=403, content_type="application/json",
                                body=orjson.dumps({"error_code": "PERMISSION_DENIED", "message": str(refusal)}),
                                headers={"x-amzn-ErrorType": refusal.error_type})
        with self._lock:
            self._accepted += 1
        return await self._forward(request, body)

    def verify(self, method: str, raw_target: str, headers: Any, body: bytes) -> None:
        """Raise Refused unless ``Authorization`` is what botocore computes for this request."""
        auth = headers.get("Authorization")
        if not auth:
            raise Refused("missing Authorization header", "MissingAuthenticationTokenException")
        match = _AUTH.match(auth)
        if not match:
            raise Refused(f"Authorization is not AWS4-HMAC-SHA256 with Credential, SignedHeaders, Signature: {auth!r}",
                          "IncompleteSignatureException")
        key, day, region, service, terminal = (match["credential"].split("/") + [""] * 5)[:5]
        if key != self._credentials.access_key:
            raise Refused(f"unknown access key {key!r}", "UnrecognizedClientException")
        if service != SERVICE or region != self.region or terminal != "aws4_request":
            raise Refused(f"credential scope {match['credential']!r} is not for {SERVICE} in {self.region}")
        timestamp = headers.get("X-Amz-Date", "")
        try:
            when = datetime.datetime.strptime(timestamp, SIGV4_TIMESTAMP).replace(tzinfo=datetime.timezone.utc)
        except ValueError:
            raise Refused(f"missing or malformed X-Amz-Date {timestamp!r}", "IncompleteSignatureException") from None
        if day != timestamp[:8]:
            raise Refused(f"credential scope date {day} is not the X-Amz-Date day {timestamp[:8]}")
        if abs(datetime.datetime.now(datetime.timezone.utc) - when) > _MAX_SKEW:
            raise Refused(f"signature expired: X-Amz-Date {timestamp} is more than 15 minutes from now")
        if self._credentials.token and headers.get("X-Amz-Security-Token") != self._credentials.token:
            raise Refused("X-Amz-Security-Token missing or not the session's token", "UnrecognizedClientException")
        signed = match["signed"].split(";")
        if "host" not in signed or "x-amz-date" not in signed:
            raise Refused(f"SignedHeaders {match['signed']!r} must include host and x-amz-date")
        if missing := [name for name in signed if name not in headers]:
            raise Refused(f"signed headers {missing} are not in the request")
        content_sha = headers.get("x-amz-content-sha256")
        if content_sha is not None and content_sha != hashlib.sha256(body).hexdigest():
            raise Refused("x-amz-content-sha256 is not the SHA-256 of the body", "XAmzContentSHA256Mismatch")

        path, _, query = raw_target.partition("?")
        base = f"http://{headers['Host']}{path}"
        request = AWSRequest(method=method, url=base, data=body or None,
                             headers={name: ",".join(headers.getall(name)) for name in signed},
                             params=parse_qsl(query, keep_blank_values=True))
        if hmac.compare_digest(self._signature(request, timestamp), match["signature"]):
            return
        as_sent = AWSRequest(method=method, url=f"{base}?{query}" if query else base, data=request.data,
                             headers=request.headers)
        if query and hmac.compare_digest(self._signature(as_sent, timestamp), match["signature"]):
            raise Refused("signature matches the query as sent, not its parameters: AWS decodes the query and "
                          "signs each name and value percent-encoded (space as %20, only A-Za-z0-9-_.~ unencoded), "
                          "sorted; send the query encoded that way")
        raise Refused("the request signature does not match what the server computes from the request "
                      "(method, path, query, signed headers, body, X-Amz-Date, secret key)")

    def _signature(self, request: AWSRequest, timestamp: str) -> str:
        signer = SigV4Auth(self._credentials, SERVICE, self.region)
        request.context["timestamp"] = timestamp
        return str(signer.signature(signer.string_to_sign(request, signer.canonical_request(request)), request))

    async def _forward(self, request: web.Request, body: bytes) -> web.Response:
        assert self._session
        headers = {"Content-Type": request.headers["Content-Type"]} if "Content-Type" in request.headers else {}
        url = yarl.URL(self.upstream_url + request.raw_path, encoded=True)  # exactly the path and query signed
        try:
            async with self._session.request(request.method, url, data=body, headers=headers,
                                             allow_redirects=False) as upstream:
                payload = await upstream.read()
                kept = {k: v for k, v in upstream.headers.items() if k.lower() in ("content-type", "content-encoding")}
                return web.Response(status=upstream.status, body=payload, headers=kept)
        except aiohttp.ClientConnectionError as exc:  # what a load balancer says when its target is down
            return web.Response(status=502, content_type="application/json",
                                body=orjson.dumps({"error_code": "BAD_GATEWAY", "message": f"upstream: {exc}"}))
