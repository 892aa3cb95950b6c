"""What a user reads back of a run that a framework integration logged: ``sagerun show`` and
``sagerun export`` of the local store, through the command line's own entry point."""

from __future__ import annotations

import dataclasses
from typing import Any

import orjson
from click.testing import CliRunner

import sagerun
from sagerun.cli import cli


def local_session(store: Any) -> sagerun.Session:
    """The embedded store in ``store``, sending inline so that a test's close is quick."""
    return sagerun.Session(backend="local", store=str(store), linger=0.005)


@dataclasses.dataclass
class Logged:
    """One run as ``sagerun show --json`` and ``sagerun export --json`` give it."""

    shown: dict[str, Any]
    series: dict[str, tuple[list[int], list[float]]]

    @property
    def status(self) -> str:
        return self.shown["status"]

    @property
    def parameters(self) -> dict[str, Any]:
        return self.shown["parameters"]

    @property
    def outputs(self) -> dict[str, Any]:
        return self.shown["artifacts"]["output"]


def read(store: Any, ref: str) -> Logged:
    shown = _json(store, "show", ref)
    exported = _json(store, "export", ref)
    series = {m["name"]: (m["steps"], m["values"]) for m in exported["metrics"]}
    return Logged(shown, series)


def runs(store: Any) -> list[dict[str, Any]]:
    return _json(store, "runs")


def _json(store: Any, command: str, *args: str) -> Any:
    result = CliRunner().invoke(cli, [command, "--store", str(store), *args, "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return orjson.loads(result.stdout)
