"""``probegen corpora``: validate the corpora and look inside them."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import typer
from rich.table import Table
from rich.text import Text

from probegen.cli.app import app, console
from probegen.cli.common import CorporaOption, open_corpora
from probegen.corpora import Attribute, Corpora
from probegen.probe import Framing

__all__ = ["corpora_app"]

corpora_app = typer.Typer(
    help="Validate and inspect the corpora.", no_args_is_help=True, rich_markup_mode=None
)
app.add_typer(
    corpora_app,
    name="corpora",
    help="Validate and inspect the corpora: attributes, names, topic taxonomy, seed questions.",
)


@corpora_app.command("check")
def check_command(corpora_dir: Path | None = CorporaOption) -> None:
    """Validate every corpus file and print what the corpora cover.

    Exits 2 with one line naming the file, line and fix at the first problem.
    """
    corpora = open_corpora(corpora_dir)
    # framings.yaml is read by the mutation operators; check it here too so a broken
    # file is caught before a search, not in the middle of one.
    from mutators._framings import load_framings

    load_framings(corpora)
    # Likewise the image wording (documents.yaml, prompts.yaml) the image operators read.
    from probegen.imaging.content import load_documents, load_prompts

    load_documents(corpora)
    load_prompts(corpora)
    console.print(f"corpora OK: {corpora.root}", markup=False)
    console.print(_attributes_table(corpora))
    console.print(_taxonomy_table(corpora))
    console.print(_seeds_table(corpora))
    n_domains = sum(1 for _ in corpora.taxonomy.domains())
    n_topics = sum(1 for _ in corpora.taxonomy.topics())
    framings = Counter(seed.expl_impl for seed in corpora.seeds)
    console.print(
        f"{len(corpora.attributes)} attributes, {len(corpora.taxonomy.superdomains)} "
        f"superdomains, {n_domains} domains, {n_topics} topics, {len(corpora.seeds)} seeds "
        f"({framings[Framing.EXPLICIT]} explicit, {framings[Framing.IMPLICIT]} implicit)",
        markup=False,
    )
    for image_set in corpora.image_sets:
        varying = Counter("+".join(pair.varying) for pair in image_set.pairs)
        console.print(
            f"image set {image_set.id}: {len(image_set.entries)} images in "
            f"{len(image_set.pairs)} pairs ({_counts(dict(varying))})",
            markup=False,
        )


@corpora_app.command("show")
def show_command(
    attr: str = typer.Argument(..., help="Attribute id, e.g. religion or sexual-orientation."),
    corpora_dir: Path | None = CorporaOption,
) -> None:
    """Show the groups of ATTR: surface forms, proxies, names and pronouns.

    Example: probegen corpora show religion
    """
    attribute = open_corpora(corpora_dir).attribute(attr)
    console.print(_attribute_table(attribute))


def _counts(values: dict[str, int]) -> str:
    return ", ".join(f"{key} {count}" for key, count in values.items())


def _attributes_table(corpora: Corpora) -> Table:
    table = Table(title="attributes")
    table.add_column("attribute", no_wrap=True)
    for column in ("groups", "names per group", "proxies per group"):
        table.add_column(column)
    for attribute in corpora.attributes.values():
        groups = attribute.groups.values()
        names = {g.id: len(g.names) for g in groups}
        proxies = {g.id: len(g.proxies) for g in groups}
        cells = (
            attribute.id,
            ", ".join(attribute.groups),
            _counts(names) if any(names.values()) else "-",
            _counts(proxies) if any(proxies.values()) else "-",
        )
        table.add_row(*(Text(cell) for cell in cells))
    return table


def _taxonomy_table(corpora: Corpora) -> Table:
    seeds = Counter(seed.superdomain for seed in corpora.seeds)
    table = Table(title="taxonomy")
    for column in ("superdomain", "domains", "topics", "seeds"):
        table.add_column(column, justify="left" if column == "superdomain" else "right")
    for superdomain in corpora.taxonomy.superdomains.values():
        topics = sum(len(domain.topics) for domain in superdomain.domains.values())
        table.add_row(
            superdomain.id, str(len(superdomain.domains)), str(topics), str(seeds[superdomain.id])
        )
    return table


def _seeds_table(corpora: Corpora) -> Table:
    counts = Counter((seed.attribute, seed.expl_impl) for seed in corpora.seeds)
    specs = list(corpora.attributes) + sorted(
        {seed.attribute for seed in corpora.seeds} - set(corpora.attributes)
    )
    table = Table(title="seeds per attribute")
    table.add_column("attribute")
    for framing in Framing:
        table.add_column(framing.value, justify="right")
    for spec in specs:
        table.add_row(spec, *(str(counts[(spec, framing)]) for framing in Framing))
    return table


def _attribute_table(attribute: Attribute) -> Table:
    table = Table(
        title=Text(f"{attribute.id}: {attribute.label}"),
        caption=Text(attribute.description),
        show_lines=True,
    )
    for column in ("group", "surface forms", "proxies", "names", "pronouns"):
        table.add_column(column)
    for group in attribute.groups.values():
        pronouns = "/".join(group.pronouns.forms()) if group.pronouns else "-"
        cells = (
            group.id if group.label.lower() == group.id else f"{group.id}\n({group.label})",
            ", ".join(group.surface_forms),
            "\n".join(group.proxies) or "-",
            ", ".join(group.names) or "-",
            pronouns,
        )
        table.add_row(*(Text(cell) for cell in cells))
    return table
