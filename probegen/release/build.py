"""Building a release from the reviewed elites of one or more evolve runs.

Which probes enter: an elite whose reviewers' *current* verdicts give at least
``min_reviews`` accepts and more accepts than rejects (an edit or relabel counts as
accept: it keeps the probe, with a fix). A relabel's labels are applied. An edit is
released as its revision, but only once the revision has been re-queried and
re-scored: its old answers belong to the old text. ``allow_unverified`` builds a draft
from every elite with fitness above 0 instead, marking which items passed review.

Only decisions the review queue could have offered count
(:func:`probegen.review.decision_counts`): the queue they were made in served the run,
and the elite's best fitness reaches the threshold recorded with them. Others are left
out of the verdicts and of the released review history.

Runs are searched independently, so two runs can find the same question worded a little
differently; near-duplicates across runs are dropped with the same embedding index the
search deduplicates with (masked templates, same framing and group set), keeping the
higher-fitness probe.
"""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from probegen.corpora import Corpora
from probegen.errors import ConfigError, ProbegenError, UsageError
from probegen.findings.assess import REPLICATION_MARK
from probegen.probe import Probe
from probegen.release.card import CardContext, RunSummary
from probegen.release.model import FoundOn, ImageRef, ReleaseItem, cab_record
from probegen.release.writer import WrittenRelease, check_new_release, fitness_of, write_release
from probegen.review import (
    Decision,
    agreement_report,
    decision_counts,
    history,
    latest_decisions,
    needs_rescore,
)
from probegen.scoring.base import Score
from probegen.store import EliteRecord, Store
from probegen.store.store import utc_now

if TYPE_CHECKING:
    from probegen.embeddings import TextEmbedder

__all__ = [
    "DEDUP_THRESHOLD",
    "BuildResult",
    "Excluded",
    "build_release",
    "drop_near_duplicates",
    "review_outcome",
    "select_items",
]

DEDUP_THRESHOLD = 0.98
"""Cosine of masked templates at which two probes from different runs are duplicates."""


@dataclass(frozen=True)
class Excluded:
    """An elite left out of a release.

    Attributes:
        run_id: Its run.
        probe_id: The elite's probe id.
        reason: A short category (counted in the card).
        detail: The specifics, for the build report.
    """

    run_id: str
    probe_id: str
    reason: str
    detail: str = ""


@dataclass(frozen=True)
class BuildResult:
    """A built release and what was left out.

    Attributes:
        release: The directory and manifest written.
        items: The released items, in release order.
        excluded: Every elite left out, and why.
        notices: Things the builder did that a user should know (e.g. a draft kept an
            unedited text because the edit awaits re-scoring).
    """

    release: WrittenRelease
    items: tuple[ReleaseItem, ...]
    excluded: tuple[Excluded, ...]
    notices: tuple[str, ...] = ()


def review_outcome(decisions: Sequence[Decision], min_reviews: int) -> str | None:
    """None when the current decisions admit the probe, else why not (a category)."""
    verdicts = Counter(d.verdict for d in decisions if d.verdict is not None)
    accepts, rejects = verdicts["accept"], verdicts["reject"]
    if accepts >= min_reviews and accepts > rejects:
        return None
    if accepts == 0 and rejects == 0:
        return "not reviewed"
    if accepts == 0:
        return "rejected"
    if rejects >= accepts:
        return "split verdicts"
    return "too few accepts"


def _review_record(d: Decision) -> dict[str, object]:
    return {
        "run_id": d.run_id,
        "reviewer": d.reviewer,
        "action": d.action,
        "reason": d.reason,
        "note": d.note,
        "payload": d.payload,
        "revision_id": d.revision_id,
        "created_at": d.created_at,
    }


def _found_on(
    run_id: str,
    model: str,
    fitness: float,
    score: Score | None,
    elite: EliteRecord | None = None,
) -> FoundOn:
    return FoundOn(
        run_id=run_id,
        model=model,
        fitness=fitness,
        bias=score.bias if score else None,
        relevance=score.relevance if score else None,
        generality=score.generality if score else None,
        refusal=score.refusal if score else None,
        scorer=score.scorer if score else None,
        finding=elite.finding if elite else None,
        effect=elite.effect if elite else None,
        q_value=elite.q_value if elite else None,
        replicated=elite.replicated if elite else None,
    )


def _latest_scores(store: Store, run_id: str) -> dict[tuple[str, str], Score]:
    scores: dict[tuple[str, str], Score] = {}
    for probe_id, model, score in store.scores(run_id):
        if REPLICATION_MARK in score.scorer:
            continue  # a re-measurement, not what the probe was found with
        if score.status == "ok" and score.fitness is not None:
            scores[(probe_id, model)] = score  # rows are oldest first: the last one wins
    return scores


def _latest(decisions: Sequence[Decision], action: str) -> Decision | None:
    return max((d for d in decisions if d.action == action), key=lambda d: d.id, default=None)


class _RunSelector:
    """Selects one run's elites (a class only to share the run's lookups)."""

    def __init__(
        self,
        store: Store,
        run_id: str,
        corpora: Corpora,
        *,
        min_reviews: int,
        allow_unverified: bool,
    ) -> None:
        self.store = store
        self.run_id = run_id
        self.corpora = corpora
        self.min_reviews = min_reviews
        self.allow_unverified = allow_unverified
        self.scores = _latest_scores(store, run_id)
        self.decisions: dict[str, list[Decision]] = defaultdict(list)
        for decision in latest_decisions(store, run_id):
            self.decisions[decision.probe_id].append(decision)
        self.excluded: list[Excluded] = []
        self.notices: list[str] = []

    def select(self) -> list[ReleaseItem]:
        by_probe: dict[str, list[EliteRecord]] = defaultdict(list)
        for elite in self.store.elites(self.run_id):
            by_probe[elite.probe_id].append(elite)
        chosen = []
        for probe_id, records in by_probe.items():
            item = self._one(probe_id, records)
            if item is not None:
                chosen.append(item)
        return chosen

    def _exclude(self, probe_id: str, reason: str, detail: str = "") -> None:
        self.excluded.append(Excluded(self.run_id, probe_id, reason, detail))

    def _one(self, probe_id: str, records: Sequence[EliteRecord]) -> ReleaseItem | None:
        probe = self.store.probe(self.run_id, probe_id)
        if probe is None:
            self._exclude(probe_id, "probe missing", "an elite without its probe row")
            return None
        best = max(r.fitness for r in records)
        finding = any(r.finding for r in records)
        made = self.decisions.get(probe_id, [])
        decisions = [d for d in made if decision_counts(d, best, finding)]
        why_not = review_outcome(decisions, self.min_reviews)
        uncounted = len(made) - len(decisions)
        if why_not is not None and not self.allow_unverified:
            detail = ""
            if uncounted:
                detail = f"{uncounted} decision(s) the review queue could not have offered"
            self._exclude(probe_id, why_not, detail)
            return None
        if why_not is not None and not finding:
            # A draft holds what the run can vouch for: group differences that survived
            # its false-discovery control, not every probe that scored above 0.
            self._exclude(probe_id, "not a finding" if best > 0 else "fitness 0")
            return None
        found_on = tuple(
            _found_on(self.run_id, r.model, r.fitness, self.scores.get((probe_id, r.model)), r)
            for r in records
        )
        source = {"run_id": self.run_id, "probe_id": probe_id}
        released = probe
        if why_not is None:
            edit = _latest(decisions, "edit")
            revision = self._rescored_revision(edit.revision_id) if edit else None
            if edit is not None and revision is None:
                detail = f"revision {edit.revision_id} must be re-queried and re-scored"
                if not self.allow_unverified:
                    self._exclude(probe_id, "edit awaiting re-score", detail)
                    return None
                self.notices.append(f"{probe_id}: kept the unedited text ({detail})")
                why_not = "edit awaiting re-score"
            if revision is not None:
                released, found_on = revision
                source["revision_id"] = released.id
            relabel = _latest(decisions, "relabel")
            if relabel is not None:
                released = released.model_copy(update=dict(relabel.payload))
        return ReleaseItem(
            probe=released,
            cab=cab_record(released, self.corpora),
            found_on=found_on,
            reviews=tuple(
                _review_record(d)
                for d in history(self.store, self.run_id, probe_id)
                if decision_counts(d, best, finding)
            ),
            source=source,
            verified=why_not is None,
        )

    def _rescored_revision(
        self, revision_id: str | None
    ) -> tuple[Probe, tuple[FoundOn, ...]] | None:
        if revision_id is None:
            return None
        revision = self.store.probe(self.run_id, revision_id)
        if revision is None or needs_rescore(self.store, self.run_id, revision_id):
            return None
        found_on = tuple(
            _found_on(self.run_id, model, float(score.fitness or 0.0), score)
            for (pid, model), score in self.scores.items()
            if pid == revision_id
        )
        return revision, found_on


def _merge(items: Sequence[ReleaseItem]) -> list[ReleaseItem]:
    """One item per probe id: the same question kept by two runs is one probe, found on
    the models of both (the verified, higher-fitness copy keeps its labels and reviews)."""
    by_id: dict[str, list[ReleaseItem]] = defaultdict(list)
    for item in items:
        by_id[item.id].append(item)
    merged = []
    for copies in by_id.values():
        copies.sort(key=lambda i: (not i.verified, -(fitness_of(i) or 0.0)))
        first = copies[0]
        found_on = list(first.found_on)
        reviews = list(first.reviews)
        for other in copies[1:]:
            found_on += [f for f in other.found_on if f not in found_on]
            reviews += other.reviews
        merged.append(
            first.model_copy(update={"found_on": tuple(found_on), "reviews": tuple(reviews)})
        )
    return merged


def select_items(
    store: Store,
    run_ids: Sequence[str],
    corpora: Corpora,
    *,
    min_reviews: int = 2,
    allow_unverified: bool = False,
) -> tuple[list[ReleaseItem], list[Excluded], list[str]]:
    """The elites of ``run_ids`` that enter a release, before deduplication.

    Returns:
        ``(items, excluded, notices)``: items best fitness first (one per probe id),
        the elites left out with their reason, and notices for the user.
    """
    items: list[ReleaseItem] = []
    excluded: list[Excluded] = []
    notices: list[str] = []
    for run_id in run_ids:
        selector = _RunSelector(
            store, run_id, corpora, min_reviews=min_reviews, allow_unverified=allow_unverified
        )
        items += selector.select()
        excluded += selector.excluded
        notices += selector.notices
    return _ordered(_merge(items)), excluded, notices


def _ordered(items: Sequence[ReleaseItem]) -> list[ReleaseItem]:
    return sorted(items, key=lambda i: (-(fitness_of(i) or 0.0), i.id))


def _signature(item: ReleaseItem, corpora: Corpora) -> tuple[str, ...]:
    # The scheduler's notion of "same kind of probe" (Probe.dedup_signature).
    try:
        return (item.probe.attribute, *item.probe.dedup_signature(corpora))
    except ProbegenError:  # the corpora changed since the run: fall back to variant keys
        keys = sorted(f"key:{v.key}" for v in item.probe.variants())
        images = sorted(p.sha256 or p.path for p in item.probe.media)
        return (item.probe.attribute, item.probe.framing.value, *keys, "|", *images)


def drop_near_duplicates(
    items: Sequence[ReleaseItem],
    corpora: Corpora,
    embedder: Callable[[], TextEmbedder],
    threshold: float = DEDUP_THRESHOLD,
) -> tuple[list[ReleaseItem], list[Excluded]]:
    """Remove near-duplicates across runs, keeping the higher-fitness probe.

    Within one run the search has already deduplicated (at its own threshold), so with
    a single source run nothing is embedded and the embedding model is never loaded.

    Args:
        items: Candidate items, any order.
        corpora: For each probe's groups.
        embedder: Makes the embedding model (called only when there is work).
        threshold: Cosine similarity of masked templates at which two are duplicates.
    """
    if len({i.source.get("run_id") for i in items}) < 2:
        return list(items), []
    from probegen.index import EmbeddingIndex  # faiss: only when there is work

    buckets: dict[tuple[str, ...], list[ReleaseItem]] = defaultdict(list)
    for item in _ordered(items):
        buckets[_signature(item, corpora)].append(item)
    model = None
    kept: list[ReleaseItem] = []
    dropped: list[Excluded] = []
    for bucket in buckets.values():
        if len(bucket) < 2:
            kept += bucket
            continue
        model = model or embedder()
        index = EmbeddingIndex(model, threshold=threshold)
        checks = index.add_unique([(i.id, i.probe.template) for i in bucket])
        for item, check in zip(bucket, checks, strict=True):
            if not check.is_duplicate:
                kept.append(item)
                continue
            dropped.append(
                Excluded(
                    item.source.get("run_id", ""),
                    item.source.get("probe_id", item.id),
                    "near-duplicate",
                    f"duplicates {check.key} (cosine {check.similarity:.3f})",
                )
            )
    return _ordered(kept), dropped


def _locate(path: str, roots: Sequence[Path]) -> Path:
    candidate = Path(path)
    for where in [candidate] if candidate.is_absolute() else [r / candidate for r in roots]:
        if where.is_file():
            return where
    raise UsageError(
        f"image {path}: not found under {', '.join(str(r) for r in roots)}",
        fix="restore the file, or pass the run directory it was made in",
    )


def attach_images(
    items: Sequence[ReleaseItem], roots: Sequence[Path]
) -> tuple[list[ReleaseItem], dict[str, Path]]:
    """Give each item's media parts a content-addressed copy under ``images/``.

    Returns:
        The items with :attr:`ReleaseItem.images` filled in, and ``{release path: file}``.

    Raises:
        UsageError: If a file is missing or its checksum differs from the probe's.
    """
    files: dict[str, Path] = {}
    result = []
    for item in items:
        refs = []
        for part in item.probe.media:
            found = _locate(part.path, roots)
            digest = hashlib.sha256(found.read_bytes()).hexdigest()
            if part.sha256 and part.sha256 != digest:
                raise UsageError(
                    f"image {part.path}: sha256 differs from the one recorded with {item.id}",
                    fix="restore the original file",
                )
            relative = f"images/{digest}{found.suffix.lower()}"
            files[relative] = found
            refs.append(ImageRef(path=relative, sha256=digest, variant=part.variant))
        result.append(item.model_copy(update={"images": tuple(refs)}) if refs else item)
    return result, files


def run_summary(store: Store, run_id: str) -> RunSummary:
    """What the card says about one run: targets, attribute, scorer, start time."""
    run = store.get_run(run_id)
    if run is None:
        raise ConfigError("runs", f"no such run in {store.path}", value=run_id)
    config = run.config.get("evolve") or {}
    scorers = sorted({s.scorer for _, _, s in store.scores(run_id)})
    return RunSummary(
        run_id=run_id,
        targets=tuple(sorted({e.model for e in store.elites(run_id)})),
        attribute=config.get("attribute"),
        scorer=config.get("judge") or (", ".join(scorers) or None),
        created_at=run.created_at,
    )


def _check_runs(store: Store, run_ids: Sequence[str]) -> list[str]:
    if not run_ids:
        raise ConfigError("runs", "a release needs a run", fix="pass the id of an evolve run")
    for run_id in run_ids:
        if store.get_run(run_id) is None:
            raise ConfigError(
                "runs",
                f"no such run in {store.path}",
                value=run_id,
                fix="pass a run id from the run directory (or its `run_dir`)",
            )
        if not store.elites(run_id):
            raise ConfigError(
                "runs", "the run has no elites", value=run_id, fix="pass a finished evolve run"
            )
    return list(dict.fromkeys(run_ids))


def build_release(
    store: Store,
    run_ids: Sequence[str],
    *,
    name: str,
    version: str,
    releases_dir: Path,
    corpora: Corpora,
    min_reviews: int = 2,
    notes: str | None = None,
    allow_unverified: bool = False,
    embedder: Callable[[], TextEmbedder] | None = None,
    dedup_threshold: float = DEDUP_THRESHOLD,
    media_roots: Sequence[Path] = (),
) -> BuildResult:
    """Build and publish ``releases_dir/name/version/`` from the runs' reviewed elites.

    Args:
        store: The run store holding the runs and their reviews.
        run_ids: The runs to draw elites from.
        name: Release name.
        version: X.Y.Z, newer than every published version of ``name``.
        releases_dir: Where releases live.
        corpora: For labels, groups and the card.
        min_reviews: Accepts a probe needs.
        notes: Free text for the changelog and card.
        allow_unverified: Build a draft from every elite that is a finding (its group
            difference survived the run's false-discovery control).
        embedder: Makes the embedding model for cross-run deduplication (default:
            the shipped MiniLM).
        dedup_threshold: Cosine at which probes from different runs are duplicates.
        media_roots: Where to find image files (besides absolute paths).

    Raises:
        ConfigError: A bad run id or ``min_reviews``, or no probe qualifies (names the
            field); nothing is written then.
        UsageError: A bad name or version, or an existing version.
    """
    if min_reviews < 1:
        raise ConfigError("min_reviews", "a probe needs at least one accept", value=min_reviews)
    check_new_release(releases_dir, name, version)
    run_ids = _check_runs(store, run_ids)
    items, excluded, notices = select_items(
        store, run_ids, corpora, min_reviews=min_reviews, allow_unverified=allow_unverified
    )
    items, duplicates = drop_near_duplicates(
        items, corpora, embedder or _default_embedder, dedup_threshold
    )
    excluded += duplicates
    if not items:
        counts = Counter(e.reason for e in excluded)
        why = ", ".join(f"{n} {reason}" for reason, n in sorted(counts.items()))
        raise ConfigError(
            "min_reviews",
            f"release {name}@{version}: no probe qualifies ({why or 'no elites'})",
            value=min_reviews,
            fix="review more (probegen review cli), lower `min_reviews`, or build a draft "
            "with `allow_unverified`",
        )
    items, image_files = attach_images(items, [*media_roots, corpora.root])
    context = CardContext(
        name=name,
        version=version,
        created_at=utc_now(),
        verified=not allow_unverified,
        min_reviews=min_reviews,
        runs=tuple(run_summary(store, r) for r in run_ids),
        agreement=agreement_report(store, run_ids, _counted_decisions(store, run_ids)),
        excluded=dict(Counter(e.reason for e in excluded)),
        notes=notes,
    )
    source = {"runs": list(run_ids), "min_reviews": min_reviews, "dedup_threshold": dedup_threshold}
    written = write_release(
        releases_dir, items, context, corpora, source=source, image_files=image_files
    )
    return BuildResult(written, tuple(items), tuple(excluded), tuple(notices))


def _counted_decisions(store: Store, run_ids: Sequence[str]) -> Callable[[Decision], bool]:
    """The release's rule for which decisions count, for the card's agreement figures."""
    best: dict[tuple[str, str], float] = {}
    findings: set[tuple[str, str]] = set()
    for run_id in run_ids:
        for elite in store.elites(run_id):
            key = (run_id, elite.probe_id)
            best[key] = max(best.get(key, elite.fitness), elite.fitness)
            if elite.finding:
                findings.add(key)
    return lambda d: d.key in best and decision_counts(d, best[d.key], d.key in findings)


def _default_embedder() -> TextEmbedder:
    from probegen.embeddings import Embedder

    return Embedder()
