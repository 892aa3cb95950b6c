"""Entry · ``sagerun ui``: the web UI over the local store, until Ctrl-C."""

from __future__ import annotations

import functools

import anyio
import click

from .common import store_path


@click.command(short_help="A web UI over the runs of the local store (read-only).")
@click.option("--store", type=click.Path(file_okay=False), default=None,
              help="Folder of the local store [default: $SAGERUN_HOME, else ./sagerun].")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; any but a loopback one needs the token printed at start.")
@click.option("--port", default=5040, show_default=True, type=click.IntRange(0, 65535),
              help="Port to listen on (0: a free one).")
def ui(store: str | None, host: str, port: int) -> None:
    """Serve a web UI over the runs of the local store, and print its URL."""
    from ..ui.server import serve

    path = store_path(store)

    def started(url: str) -> None:
        click.echo(f"sagerun ui on {url}  (store {path}; Ctrl-C stops it)", err=False)

    try:
        anyio.run(functools.partial(serve, path, host, port, started), backend="asyncio")
    except KeyboardInterrupt:
        pass
