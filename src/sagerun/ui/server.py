"""UI · the web server of ``sagerun ui``: one page, its script, and JSON over a source of runs
(the local store, or SageMaker with ``--source sagemaker``).

aiohttp.web, not starlette with uvicorn: aiohttp is already a dependency (the metrics and MLflow
paths), and a read-only UI of a few routes needs nothing the other two would add. The charts are
drawn by plotly.js, served from the plotly Python package (``sagerun[ui]``), so the UI works with
no internet: nothing is fetched from a CDN.

It binds 127.0.0.1. On any other host every request needs the token printed at start, as
Jupyter's does: in the URL once (``?token=``, which sets a cookie) or in an
``Authorization: Token …`` header.
"""

from __future__ import annotations

import hmac
import importlib.util
import ipaddress
import json
import logging
import os
import secrets
import sqlite3
from typing import Any, Awaitable, Callable

import anyio
from aiohttp import web

from .._artifacts.preview import ArtifactNotFoundError, ArtifactUnreadableError
from .._model.errors import SagerunError
from ..store import db, queries
from . import data

logger = logging.getLogger("sagerun")
STATIC = os.path.join(os.path.dirname(__file__), "static")
_COOKIE = "sagerun_ui_token"
_ASSETS = frozenset({"app.js", "style.css"})
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class UIUnavailableError(SagerunError):
    """The UI cannot start: plotly, whose plotly.js draws the charts, is not installed."""


def plotly_js() -> str:
    """The path of the plotly.min.js that the plotly package ships.

    Raises:
        UIUnavailableError: plotly is not installed.
    """
    spec = importlib.util.find_spec("plotly")
    if spec is None or not spec.submodule_search_locations:
        raise UIUnavailableError("sagerun ui draws its charts with plotly.js: pip install 'sagerun[ui]'")
    return os.path.join(list(spec.submodule_search_locations)[0], "package_data", "plotly.min.js")


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def make_app(source: Any, *, token: str | None = None) -> web.Application:
    """The UI over ``source`` (a ``data.LocalSource`` or a ``SageMakerSource``); ``token``, when
    given, is required of every request.

    Raises:
        UIUnavailableError: plotly is not installed.
    """
    app = web.Application(middlewares=[_guard(token)] if token else [])
    app["source"] = source
    app["plotly"] = plotly_js()
    app.router.add_get("/", _page)
    app.router.add_get("/static/{name}", _asset)
    app.router.add_get("/api/runs", _json_of(lambda source, request: source.runs()))
    app.router.add_get("/api/runs/{experiment}/{run}", _json_of(lambda source, request: source.run(_ref(request))))
    app.router.add_get("/api/runs/{experiment}/{run}/metrics/{name:.+}", _json_of(
        lambda source, request: source.series(_ref(request), request.match_info["name"],
                                              _number(request, "buckets", data.DEFAULT_BUCKETS, 10, 10_000))))
    app.router.add_get("/api/runs/{experiment}/{run}/tables/{name}", _json_of(
        lambda source, request: source.table_page(_ref(request), request.match_info["name"],
                                                  _number(request, "offset", 0, 0, 10**12),
                                                  _number(request, "limit", 50, 1, 1_000))))
    app.router.add_get("/api/runs/{experiment}/{run}/charts/{name}", _json_of(
        lambda source, request: source.chart(_ref(request), request.match_info["name"])))
    app.router.add_get("/files/{experiment}/{run}/{path:.+}", _file)
    return app


def new_token() -> str:
    return secrets.token_urlsafe(24)


def _guard(token: str) -> Any:
    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        given = request.query.get("token") or request.cookies.get(_COOKIE) or ""
        header = request.headers.get("Authorization", "")
        if header.startswith("Token "):
            given = header[len("Token "):]
        if not hmac.compare_digest(given.encode(), token.encode()):
            raise web.HTTPForbidden(text="this sagerun ui needs its token: open the URL it printed at start "
                                         "(…/?token=…)\n")
        response = await handler(request)
        if request.query.get("token"):
            response.set_cookie(_COOKIE, token, httponly=True, samesite="Strict")
        return response

    return guard


async def _page(request: web.Request) -> web.StreamResponse:
    return web.FileResponse(os.path.join(STATIC, "index.html"), headers={"Cache-Control": "no-cache"})


async def _asset(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    if name == "plotly.min.js":  # a file of an installed package: it changes only with its version
        return web.FileResponse(request.app["plotly"], headers={"Cache-Control": "max-age=86400"})
    if name not in _ASSETS:
        raise web.HTTPNotFound()
    return web.FileResponse(os.path.join(STATIC, name), headers={"Cache-Control": "no-cache"})


def _ref(request: web.Request) -> str:
    return f"{request.match_info['experiment']}/{request.match_info['run']}"


def _number(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    """The whole-number query parameter ``name``, ``default`` when absent.

    Raises:
        web.HTTPBadRequest: it is not a whole number from ``low`` to ``high``.
    """
    try:
        value = int(request.query.get(name, default))
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        raise web.HTTPBadRequest(text=f"{name} must be a whole number from {low:,} to {high:,}\n")
    return value


def _json_of(read: Callable[[Any, web.Request], Awaitable[Any]]) -> Handler:
    """A handler answering ``await read(source, request)`` as JSON; a store that is missing or
    unreadable, SageMaker unreachable, and a run, metric or artifact not found answer with a
    message, not a traceback."""
    async def handler(request: web.Request) -> web.StreamResponse:
        try:
            body = await read(request.app["source"], request)
        except (queries.RunNotFoundError, queries.AmbiguousRunError, ArtifactNotFoundError, KeyError) as exc:
            return _error(404, str(exc).strip("'\""))
        except (ValueError, ArtifactUnreadableError) as exc:  # not a table or chart, or unreadable
            return _error(422, str(exc))
        except db.NoStoreError as exc:
            return _error(503, str(exc))
        except (sqlite3.Error, SagerunError) as exc:
            logger.warning("sagerun ui: could not read the runs: %s", exc)
            return _error(503, f"the runs cannot be read: {exc}")
        return web.json_response(body, dumps=lambda value: json.dumps(value, allow_nan=False))

    return handler


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


async def _file(request: web.Request) -> web.StreamResponse:
    try:
        path = await request.app["source"].file_path(_ref(request), request.match_info["path"])
    except (queries.RunNotFoundError, queries.AmbiguousRunError, SagerunError, sqlite3.Error, KeyError):
        path = None
    if path is None:
        raise web.HTTPNotFound(text="no such file of this run\n")
    headers = {}
    if "download" in request.query:
        headers["Content-Disposition"] = f'attachment; filename="{os.path.basename(path)}"'
    return web.FileResponse(path, headers=headers)


async def serve(source: Any, host: str, port: int, started: Callable[[str], None]) -> None:
    """Serve the UI over ``source`` until cancelled; ``started(url)`` once it listens (``port`` 0:
    a free one).

    Raises:
        UIUnavailableError: plotly is not installed.
        OSError: the address cannot be bound.
    """
    token = None if is_loopback(host) else new_token()
    runner = web.AppRunner(make_app(source, token=token), access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound = runner.addresses[0]
        shown = f"[{bound[0]}]" if ":" in str(bound[0]) else str(bound[0])
        started(f"http://{shown}:{bound[1]}/" + (f"?token={token}" if token else ""))
        await anyio.sleep_forever()
    finally:
        await runner.cleanup()
