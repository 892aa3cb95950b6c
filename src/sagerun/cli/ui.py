"""Entry · ``sagerun ui``: the web UI over the local store, or over SageMaker, until Ctrl-C."""

from __future__ import annotations

import contextlib
from typing import Any

import anyio
import click

from .._model.session import Session
from .common import store_path


@click.command(short_help="A web UI over the runs of the local store or SageMaker (read-only).")
@click.option("--store", type=click.Path(file_okay=False), default=None,
              help="Folder of the local store [default: $SAGERUN_HOME, else ./sagerun].")
@click.option("--source", type=click.Choice(["local", "sagemaker"]), default="local", show_default=True,
              help="Where the runs are read: the local store, or SageMaker Experiments (AWS credentials).")
@click.option("--experiment", default=None, help="With --source sagemaker: only this experiment's runs.")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; any but a loopback one needs the token printed at start.")
@click.option("--port", default=5040, show_default=True, type=click.IntRange(0, 65535),
              help="Port to listen on (0: a free one).")
def ui(store: str | None, source: str, experiment: str | None, host: str, port: int) -> None:
    """Serve a web UI over the runs of the local store (or of SageMaker), and print its URL."""
    from ..ui.data import LocalSource
    from ..ui.sagemaker_source import SageMakerSource
    from ..ui.server import serve

    path = store_path(store)
    where = f"store {path}" if source == "local" else "SageMaker" + (f", experiment {experiment}" if experiment else "")

    def started(url: str) -> None:
        click.echo(f"sagerun ui on {url}  ({where}; Ctrl-C stops it)")

    async def main() -> None:
        async with contextlib.AsyncExitStack() as stack:
            runs: Any = LocalSource(path)
            if source == "sagemaker":
                runs = await stack.enter_async_context(SageMakerSource(Session.from_env(), experiment))
            await serve(runs, host, port, started)

    try:
        anyio.run(main, backend="asyncio")
    except KeyboardInterrupt:
        pass
