"""Entry · what every ``sagerun`` command shares: one-line errors, the store options, JSON and table output."""

from __future__ import annotations

import contextlib
import datetime
import logging
import os
import sqlite3
import sys
from typing import Any, Callable, TypeVar

import click
import orjson
from rich.console import Console
from rich.table import Table

from .._model.errors import SagerunError
from .._model.session import Session
from ..store import opened

logger = logging.getLogger("sagerun")
F = TypeVar("F", bound=Callable[..., Any])
_HANDLED = (SagerunError, ValueError, LookupError, sqlite3.Error, OSError)


class Group(click.Group):
    """Turns the failures a user can act on into one line on stderr and exit status 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except BrokenPipeError:
            # The reader went away (`sagerun export RUN | head`): stop quietly, as Unix tools do.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            sys.exit(1)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except _HANDLED as exc:
            logger.debug("sagerun: the command failed", exc_info=True)
            message = str(exc) or type(exc).__name__
            if isinstance(exc, sqlite3.Error):
                message = f"the local store could not be read or written: {message}"
            raise click.ClickException(message) from None
        except Exception as exc:  # a bug: still one line, with the way to the traceback
            logger.debug("sagerun: the command failed", exc_info=True)
            raise click.ClickException(f"internal error: {type(exc).__name__}: {exc} (`sagerun -vv ...` shows "
                                       "the traceback; please report it)") from None


def store_options(command: F) -> F:
    command = click.option("--json", "as_json", is_flag=True,
                           help="Print JSON for scripts instead of tables.")(command)
    return click.option("--store", metavar="PATH", default=None,
                        help="Folder of the local store [default: $SAGERUN_HOME, else ./sagerun].")(command)


def store_path(store: str | None) -> str:
    return store or Session.from_env().store_path


def open_store(store: str | None) -> contextlib.AbstractContextManager[sqlite3.Connection]:
    return opened(store_path(store))


def echo_json(value: Any) -> None:
    click.echo(orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY).decode())


def make_console() -> Console:
    console = Console(highlight=False)
    if not console.is_terminal:  # piped: rich would assume 80 columns and cut names short
        console = Console(highlight=False, width=max(console.width, 240))
    return console


def make_table(*headers: str, title: str | None = None) -> Table:
    """A table whose cells wrap rather than end in an ellipsis: names must stay whole to be copied."""
    table = Table(title=title, title_justify="left")
    for header in headers:
        table.add_column(header, overflow="fold")
    return table


def local_time(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return datetime.datetime.fromtimestamp(seconds).strftime("%Y-%m-%d %H:%M:%S")


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    minutes, rest = divmod(seconds, 60)
    return f"{int(minutes)}m{rest:04.1f}s" if minutes else f"{rest:.1f}s"


def number(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return "-" if value is None else str(value)
