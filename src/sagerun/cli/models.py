"""Entry · ``sagerun models``: the model versions runs registered in the local store."""

from __future__ import annotations

import click
from rich.text import Text

from ..store import models as registry
from .common import echo_json, make_console, make_table, open_store, store_options, store_path


@click.command(short_help="The model versions runs registered (run.register_model).")
@store_options
@click.argument("group", required=False)
def models(store: str | None, as_json: bool, group: str | None) -> None:
    """List the model versions registered in the local store, or those of GROUP, by group and version."""
    with open_store(store) as conn:
        found = registry.list_models(conn, group)
    if as_json:
        echo_json([version._asdict() for version in found])
        return
    if not found:
        click.echo(f"no models registered in {store_path(store)}" + (f" as {group!r}" if group else "")
                   + ": run.register_model(group, path) registers one")
        return
    table = make_table("Group", "Version", "Approval", "Run", "Model data")
    for version in found:
        table.add_row(version.group, str(version.version), version.approval_status, version.run,
                      Text(version.model_data))
    make_console().print(table)
