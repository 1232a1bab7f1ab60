"""``probegen release``: versioned benchmark releases (build, list, show, diff, verify,
import)."""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape
from rich.table import Table

from probegen.cli.app import app, console, err_console
from probegen.cli.common import (
    CorporaOption,
    RunDirOption,
    flags_for_fields,
    open_corpora,
    writable_dir,
)
from probegen.embeddings import DEFAULT_EMBEDDER
from probegen.errors import UsageError
from probegen.release.api import build_release
from probegen.release.build import DEDUP_THRESHOLD
from probegen.release.card import CardContext, Coverage, coverage
from probegen.release.changelog import ReleaseDiff, diff_items, what_changed
from probegen.release.importer import import_cab
from probegen.release.model import (
    MANIFEST_FILE,
    PROBES_FILE,
    ReleaseItem,
    read_items,
    resolve_release_dir,
)
from probegen.release.staging import staging_dirs
from probegen.release.verify import verify_release
from probegen.release.writer import (
    RELEASES_ENV,
    fitness_of,
    published_versions,
    releases_root,
    write_release,
)
from probegen.store.store import utc_now

release_app = typer.Typer(
    help="Versioned, verified benchmark releases in CAB's format.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(release_app, name="release")

ReleasesDirOption = typer.Option(
    None,
    "--releases-dir",
    help="Where releases live (default: $PROBEGEN_RELEASES_DIR or ./releases).",
    file_okay=False,
)
VersionOption = typer.Option(..., "--version", help="The new version, X.Y.Z.")
COVERAGE_TITLE = "coverage (probes)"


def _print_coverage(cover: Coverage, title: str) -> None:
    table = Table(title=title)
    table.add_column("superdomain")
    for attribute in cover.attributes:
        table.add_column(escape(attribute), justify="right")
    table.add_column("total", justify="right")
    for superdomain in cover.superdomains:
        row = cover.row(superdomain)
        table.add_row(escape(superdomain), *map(str, row), str(sum(row)))
    console.print(table)


def _open_release(spec: str, releases_dir: Path | None) -> tuple[Path, list[ReleaseItem]]:
    path = resolve_release_dir(spec, releases_root(releases_dir))
    try:
        return path, read_items(path / PROBES_FILE)
    except ValueError as error:  # pydantic's ValidationError is a ValueError
        first = str(error).splitlines()[0]
        raise UsageError(
            f"release {spec}: {path / PROBES_FILE} is unreadable: {first}",
            fix=f"run probegen release verify {spec}",
        ) from None


def _writable_releases(releases_dir: Path | None) -> Path:
    env = os.environ.get(RELEASES_ENV)
    source = "--releases-dir" if releases_dir else f"${RELEASES_ENV}" if env else "releases dir"
    return writable_dir(releases_root(releases_dir), source)


def _manifest(path: Path) -> dict[str, Any]:
    try:
        data = json.loads((path / MANIFEST_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


# The flag behind each argument of probegen.build_release whose name does not say it.
_BUILD_FLAG_OF = {"runs": "--from", "corpora_dir": "--corpora", "name": "NAME"}


@release_app.command("build")
def build_command(
    name: str = typer.Argument(..., help="Release name, e.g. gender-bias."),
    runs: list[str] = typer.Option(..., "--from", help="Run id to draw elites from (repeat)."),
    version: str = VersionOption,
    min_reviews: int = typer.Option(2, "--min-reviews", help="Accepts a probe needs."),
    notes: str | None = typer.Option(None, "--notes", help="Release notes (changelog, card)."),
    allow_unverified: bool = typer.Option(
        False, "--allow-unverified", help="Draft: every elite with fitness > 0, unreviewed too."
    ),
    dedup_threshold: float = typer.Option(
        DEDUP_THRESHOLD, "--dedup-threshold", help="Cosine at which probes of two runs are dups."
    ),
    embedder: str = typer.Option(DEFAULT_EMBEDDER, "--embedder", help="Embedding model."),
    run_dir: Path | None = RunDirOption,
    releases_dir: Path | None = ReleasesDirOption,
    corpora_dir: Path | None = CorporaOption,
) -> None:
    """Build releases/NAME/X.Y.Z from the reviewed elites of one or more runs."""
    root = _writable_releases(releases_dir)
    with flags_for_fields("release build", _BUILD_FLAG_OF):
        result = build_release(
            name,
            runs,
            version=version,
            min_reviews=min_reviews,
            notes=notes,
            allow_unverified=allow_unverified,
            dedup_threshold=dedup_threshold,
            embedder=embedder,
            run_dir=run_dir,
            releases_dir=root,
            corpora_dir=corpora_dir,
        )
    for excluded in result.excluded:
        if excluded.detail:
            console.print(
                f"left out {excluded.probe_id} ({excluded.run_id}): {excluded.reason}: "
                f"{excluded.detail}",
                markup=False,
                soft_wrap=True,
            )
    for notice in result.notices:
        console.print(f"note: {notice}", markup=False, soft_wrap=True)
    _print_coverage(coverage(result.items), COVERAGE_TITLE)
    reasons = Counter(e.reason for e in result.excluded)
    left_out = ", ".join(f"{n} {r}" for r, n in sorted(reasons.items())) or "none"
    kind = "verified" if not allow_unverified else "UNVERIFIED draft"
    console.print(
        f"built {result.release.path}: {len(result.items)} probes ({kind}); left out: {left_out}",
        markup=False,
        soft_wrap=True,
    )


# The flag behind each argument of import_cab and write_release whose name does not say it.
_IMPORT_FLAG_OF = {"name": "--as"}


@release_app.command("import")
def import_command(
    file: Path = typer.Argument(..., help="A cab.json (or any file in CAB's schema)."),
    name: str | None = typer.Option(None, "--as", help="Release name (default: file name)."),
    version: str | None = typer.Option(
        None, "--version", help="Version X.Y.Z (default 1.0.0 for a new name)."
    ),
    notes: str | None = typer.Option(None, "--notes", help="Release notes."),
    releases_dir: Path | None = ReleasesDirOption,
    corpora_dir: Path | None = CorporaOption,
) -> None:
    """Import a benchmark in CAB's schema as a release, so `probegen eval` can run it."""
    corpora = open_corpora(corpora_dir)
    with flags_for_fields("release import", _IMPORT_FLAG_OF):
        items = import_cab(file, corpora)
    root = _writable_releases(releases_dir)
    name = name or (file.parent.name if file.stem == "cab" and file.parent.name else file.stem)
    if version is None:
        existing = published_versions(root, name)
        if existing:
            raise UsageError(
                f"release {name} already has version {existing[-1][1].name}",
                fix="pass --version with a newer X.Y.Z",
            )
        version = "1.0.0"
    context = CardContext(
        name=name,
        version=version,
        created_at=utc_now(),
        verified=None,
        imported_from=file.name,
        notes=notes,
    )
    with flags_for_fields("release import", _IMPORT_FLAG_OF):
        written = write_release(root, items, context, corpora, source={"import": file.name})
    _print_coverage(coverage(items), COVERAGE_TITLE)
    console.print(f"imported {len(items)} probes into {written.path}", markup=False, soft_wrap=True)


@release_app.command("list")
def list_command(releases_dir: Path | None = ReleasesDirOption) -> None:
    """List every release and version."""
    root = releases_root(releases_dir)
    table = Table(title=f"releases in {escape(str(root))}")
    for column in ("release", "probes", "verified", "source", "created"):
        table.add_column(column)
    names = sorted(p.name for p in root.glob("*") if p.is_dir()) if root.is_dir() else []
    rows = 0
    for name in names:
        for _, path in published_versions(root, name):
            manifest = _manifest(path)
            verified = {True: "yes", False: "DRAFT", None: "imported"}.get(
                manifest.get("verified"), "?"
            )
            source = manifest.get("source") or {}
            runs = source.get("runs") or []
            origin = source.get("import") or (f"{len(runs)} run(s)" if runs else "?")
            probes = (manifest.get("counts") or {}).get("probes", "?")
            table.add_row(
                escape(f"{name}@{path.name}"),
                str(probes),
                verified,
                escape(str(origin)),
                escape(str(manifest.get("created_at", "?"))),
            )
            rows += 1
    if rows == 0:
        console.print(f"no releases in {root}", markup=False, soft_wrap=True)
        return
    console.print(table)


@release_app.command("show")
def show_command(
    spec: str = typer.Argument(..., help="NAME, NAME@X.Y.Z or a release directory."),
    limit: int = typer.Option(5, "--limit", min=0, help="How many probes to show."),
    releases_dir: Path | None = ReleasesDirOption,
) -> None:
    """Summarise a release and show its first probes."""
    path, items = _open_release(spec, releases_dir)
    manifest = _manifest(path)
    verified = manifest.get("verified")
    status = {True: "verified", False: "UNVERIFIED draft", None: "imported"}.get(verified, "?")
    console.print(
        f"{manifest.get('name', path.parent.name)}@{manifest.get('version', path.name)}: "
        f"{len(items)} probes, {status}, built {manifest.get('created_at', '?')} "
        f"with probegen {manifest.get('probegen_version', '?')} ({path})",
        markup=False,
        soft_wrap=True,
    )
    _print_coverage(coverage(items), COVERAGE_TITLE)
    # Plain lines, not a table: templates are long and must stay whole to be copied.
    for rank, item in enumerate(items[:limit], start=1):
        fitness = fitness_of(item)
        cab = item.cab
        console.print(
            f"{rank}. {item.id}  fitness {'-' if fitness is None else f'{fitness:.3f}'}  "
            f"{cab['attribute']}/{cab['expl_impl']}  "
            f"{cab['superdomain']} / {cab['domain']} / {cab['topic']}\n   {cab['example']}",
            markup=False,
            soft_wrap=True,
        )
    if len(items) > limit:
        console.print(f"... and {len(items) - limit} more (--limit)", markup=False)


def _print_diff(a: str, b: str, diff: ReleaseDiff) -> None:
    console.print(
        f"{a} -> {b}: {len(diff.added)} added, {len(diff.removed)} removed, "
        f"{len(diff.edited)} edited, {diff.unchanged} unchanged",
        markup=False,
        soft_wrap=True,
    )
    for item in diff.added:
        console.print(f"+ {item.id}  {item.probe.template}", markup=False, soft_wrap=True)
    for item in diff.removed:
        console.print(f"- {item.id}  {item.probe.template}", markup=False, soft_wrap=True)
    for old, new in diff.edited:
        console.print(
            f"~ {old.id} -> {new.id} ({what_changed(old, new)})  {new.probe.template}",
            markup=False,
            soft_wrap=True,
        )


@release_app.command("diff")
def diff_command(
    a: str = typer.Argument(..., help="The older release (NAME@X.Y.Z or a directory)."),
    b: str = typer.Argument(..., help="The newer release."),
    releases_dir: Path | None = ReleasesDirOption,
) -> None:
    """Added, removed and edited probes between two releases."""
    _, old = _open_release(a, releases_dir)
    _, new = _open_release(b, releases_dir)
    _print_diff(a, b, diff_items(old, new))


def _release_to_verify(spec: str, root: Path) -> Path:
    # A release whose probes.jsonl was deleted is still a release to report on: fall
    # back to the directory holding its manifest.
    try:
        return resolve_release_dir(spec, root)
    except UsageError:
        for candidate in (Path(spec), root / spec.replace("@", "/")):
            if (candidate / MANIFEST_FILE).is_file():
                return candidate
        raise


@release_app.command("verify")
def verify_command(
    spec: str = typer.Argument(..., help="NAME, NAME@X.Y.Z or a release directory."),
    releases_dir: Path | None = ReleasesDirOption,
) -> None:
    """Recompute every checksum against MANIFEST.json and check cab.json's schema.

    Staging directories left beside the release by interrupted builds are listed as
    warnings: they are not part of any release, so they do not fail the check.
    """
    path = _release_to_verify(spec, releases_root(releases_dir))
    problems = verify_release(path)
    for staging in staging_dirs(path.resolve().parent):
        err_console.print(f"warning: {staging.describe()}", markup=False, soft_wrap=True)
    for problem in problems:
        console.print(problem, markup=False, soft_wrap=True)
    if problems:
        err_console.print(f"{path}: {len(problems)} problem(s)", markup=False, soft_wrap=True)
        raise typer.Exit(1)
    files = len(_manifest(path).get("files") or {})
    console.print(
        f"{path}: ok ({files} files match {MANIFEST_FILE}; cab.json valid)",
        markup=False,
        soft_wrap=True,
    )
