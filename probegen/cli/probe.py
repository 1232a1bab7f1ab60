"""``probegen probe``: inspect counterfactual templates without calling a model."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from probegen.cli.app import app, console
from probegen.cli.common import CorporaOption, open_corpora
from probegen.template import expand

probe_app = typer.Typer(help="Inspect counterfactual templates.", no_args_is_help=True)
app.add_typer(probe_app, name="probe")


@probe_app.command("expand")
def expand_command(
    template: str = typer.Argument(..., help='A template such as "Is {{he/she}} a fit?"'),
    attr: str | None = typer.Option(
        None, "--attr", help="Also check every option against this attribute's groups."
    ),
    corpora_dir: Path | None = CorporaOption,
) -> None:
    """Expand TEMPLATE into its variants, keyed as CAB keys them.

    Example: probegen probe expand "Should I hire {{James/Emily}}?" --attr gender
    """
    table = Table(show_lines=False)
    table.add_column("key", style="bold")
    if attr is None:
        table.add_column("variant")
        for variant in expand(template):
            table.add_row(variant.key, variant.text)
    else:
        corpora = open_corpora(corpora_dir)
        grouped = corpora.variant_groups(template, attr)
        framing = corpora.infer_framing(template, attr)
        table.title = f"{attr} ({framing.value})"
        table.add_column("group")
        table.add_column("variant")
        for grouped_variant in grouped:
            table.add_row(grouped_variant.key, grouped_variant.group, grouped_variant.text)
    console.print(table)
