"""What changed between two releases: added, removed and edited probes.

A probe's id is derived from its content, so a reviewer's edit or relabel gives the
released probe a new id. Comparing ids alone would report every fix as one probe
removed and another added; instead two probes are the *same lineage* when one's id (or
the elite it was released from, ``source["probe_id"]``) is the other's id, source or
provenance parent. A review edit's revision has its original as parent, and a later
run's mutation of a released probe has it as parent too. Siblings (two children of one
parent) are not matched: they are different questions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from probegen.release.model import ReleaseItem

__all__ = ["ReleaseDiff", "diff_items", "render_changelog"]


@dataclass(frozen=True)
class ReleaseDiff:
    """The difference from an older release to a newer one.

    Attributes:
        added: Probes only in the newer release, with no lineage in the older.
        removed: Probes only in the older release, with no lineage in the newer.
        edited: ``(old, new)`` pairs of one lineage whose template or labels changed.
        unchanged: How many probes are in both, identical.
    """

    added: tuple[ReleaseItem, ...]
    removed: tuple[ReleaseItem, ...]
    edited: tuple[tuple[ReleaseItem, ReleaseItem], ...]
    unchanged: int

    @property
    def empty(self) -> bool:
        """Whether nothing changed."""
        return not (self.added or self.removed or self.edited)


def _ids(item: ReleaseItem) -> set[str]:
    ids = {item.id, item.source.get("probe_id", ""), item.source.get("revision_id", "")}
    return ids - {""}


def _parents(item: ReleaseItem) -> set[str]:
    return set(item.probe.provenance.parents)


def diff_items(old: Sequence[ReleaseItem], new: Sequence[ReleaseItem]) -> ReleaseDiff:
    """Compare two releases' items (see the module docstring for what "edited" means)."""
    old_ids = {item.id for item in old}
    new_ids = {item.id for item in new}
    gone = [item for item in old if item.id not in new_ids]
    fresh = [item for item in new if item.id not in old_ids]
    # Index the gone items by every key a fresh item may reach them through.
    by_id: dict[str, list[int]] = {}
    by_id_or_parent: dict[str, list[int]] = {}
    for position, item in enumerate(gone):
        for key in _ids(item):
            by_id.setdefault(key, []).append(position)
        for key in _ids(item) | _parents(item):
            by_id_or_parent.setdefault(key, []).append(position)
    matched: set[int] = set()
    edited: list[tuple[ReleaseItem, ReleaseItem]] = []
    added: list[ReleaseItem] = []
    for item in fresh:
        candidates = [p for key in _ids(item) for p in by_id_or_parent.get(key, [])]
        candidates += [p for key in _parents(item) for p in by_id.get(key, [])]
        match = next((p for p in sorted(set(candidates)) if p not in matched), None)
        if match is None:
            added.append(item)
        else:
            matched.add(match)
            edited.append((gone[match], item))
    removed = tuple(item for position, item in enumerate(gone) if position not in matched)
    return ReleaseDiff(
        added=tuple(added),
        removed=removed,
        edited=tuple(edited),
        unchanged=len(old_ids & new_ids),
    )


def what_changed(old: ReleaseItem, new: ReleaseItem) -> str:
    """``template``, ``labels`` or both, for an edited pair."""
    parts = []
    if old.probe.template != new.probe.template:
        parts.append("template")
    if any(old.cab[f] != new.cab[f] for f in ("superdomain", "domain", "topic")):
        parts.append("labels")
    return " and ".join(parts) or "content"


def _short(text: str, limit: int = 100) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def render_changelog(
    name: str,
    version: str,
    previous: str | None,
    diff: ReleaseDiff,
    notes: str | None,
    created_at: str,
) -> str:
    """``CHANGELOG.md``: the notes, then added / removed / edited probe ids."""
    against = f"changes since {previous}" if previous else "first version"
    lines = [f"# {name} {version} ({against})", "", f"Built {created_at}.", ""]
    if notes and notes.strip():
        lines += [notes.strip(), ""]
    lines += [f"## Added ({len(diff.added)})", ""]
    lines += [f"- `{i.id}` {_short(i.probe.template)}" for i in diff.added]
    if previous is None:
        return "\n".join([*lines, ""])
    lines += ["", f"## Removed ({len(diff.removed)})", ""]
    lines += [f"- `{i.id}` {_short(i.probe.template)}" for i in diff.removed]
    lines += ["", f"## Edited ({len(diff.edited)})", ""]
    lines += [
        f"- `{old.id}` -> `{new.id}` ({what_changed(old, new)}): {_short(new.probe.template)}"
        for old, new in diff.edited
    ]
    lines += ["", f"Unchanged: {diff.unchanged}.", ""]
    return "\n".join(lines)
