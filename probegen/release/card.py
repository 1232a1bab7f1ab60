"""The dataset card (``README.md``) of a release, in the Hugging Face format.

The YAML header is what the Hub reads (license, task, size, where the parquet split
lives); it is produced with ``yaml.safe_dump`` so it always parses. The body is a
datasheet: a benchmark of bias probes is only usable if a reader can see how it was
made, who checked it, what it covers and what it does not.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import yaml

from probegen.corpora import Corpora
from probegen.errors import ProbegenError, UsageError
from probegen.release.model import ReleaseItem
from probegen.review import AgreementReport

__all__ = ["CardContext", "Coverage", "RunSummary", "coverage", "render_card", "size_category"]

PARQUET_GLOB = "data/train-*.parquet"


@dataclass(frozen=True)
class RunSummary:
    """One evolve run a release drew on, as the card describes it.

    Attributes:
        run_id: The run id.
        targets: The models its elites were found on.
        attribute: The attribute it searched, if recorded.
        scorer: The scorer (``stats`` or ``judge:SPEC``), if recorded.
        created_at: When it started.
    """

    run_id: str
    targets: tuple[str, ...]
    attribute: str | None
    scorer: str | None
    created_at: str


@dataclass(frozen=True)
class CardContext:
    """What the card says beyond the items themselves.

    Attributes:
        name: Release name.
        version: X.Y.Z.
        created_at: Build time (ISO-8601 UTC).
        verified: True for a reviewed release, False for a draft, None for an import.
        min_reviews: Accepts each probe needed (None for an import).
        runs: The runs the probes came from.
        agreement: Reviewer agreement over those runs, if any review exists.
        excluded: Why elites were left out, with counts.
        imported_from: The file an imported release was read from.
        notes: The release notes given with the build, if any.
    """

    name: str
    version: str
    created_at: str
    verified: bool | None
    min_reviews: int | None = None
    runs: tuple[RunSummary, ...] = ()
    agreement: AgreementReport | None = None
    excluded: dict[str, int] = field(default_factory=dict)
    imported_from: str | None = None
    notes: str | None = None


@dataclass(frozen=True)
class Coverage:
    """How many probes fall in each attribute x superdomain cell.

    Attributes:
        attributes: Column order.
        superdomains: Row order.
        counts: ``(attribute, superdomain) -> probes``.
    """

    attributes: tuple[str, ...]
    superdomains: tuple[str, ...]
    counts: dict[tuple[str, str], int]

    def row(self, superdomain: str) -> list[int]:
        """The counts of one superdomain, one per attribute."""
        return [self.counts.get((a, superdomain), 0) for a in self.attributes]


def coverage(items: Sequence[ReleaseItem]) -> Coverage:
    """Count probes per attribute x superdomain (an empty superdomain shows as ``-``)."""
    counts = Counter((i.cab["attribute"], i.cab["superdomain"] or "-") for i in items)
    return Coverage(
        attributes=tuple(sorted({a for a, _ in counts})),
        superdomains=tuple(sorted({s for _, s in counts})),
        counts=dict(counts),
    )


def size_category(n: int) -> str:
    """The Hub's ``size_categories`` value for ``n`` rows."""
    for bound, label in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K")):
        if n < bound:
            return label
    return "100K<n<1M"


def _header(items: Sequence[ReleaseItem], context: CardContext) -> str:
    tags = ["bias", "fairness", "counterfactual", "cab", "probegen"]
    if context.verified is False:
        tags.append("unverified")
    header = {
        "license": "mit",
        "pretty_name": f"{context.name} {context.version}",
        "language": ["en"],
        "task_categories": ["text-generation"],
        "size_categories": [size_category(len(items))],
        "tags": tags,
        "configs": [
            {
                "config_name": "default",
                "data_files": [{"split": "train", "path": PARQUET_GLOB}],
            }
        ],
    }
    return "---\n" + yaml.safe_dump(header, sort_keys=False, allow_unicode=True) + "---\n"


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ").strip()


def _group_label(corpora: Corpora, spec: str, group: str) -> str:
    try:
        parts = corpora.components(spec)
    except UsageError:
        return group
    labels = []
    for attribute, part in zip(parts, group.split("+"), strict=False):
        found = attribute.groups.get(part)
        labels.append(found.label if found is not None else part)
    return " + ".join(labels)


def _groups_section(items: Sequence[ReleaseItem], corpora: Corpora) -> list[str]:
    lines = ["## Attributes and groups", ""]
    for spec in sorted({i.cab["attribute"] for i in items}):
        mine = [i for i in items if i.cab["attribute"] == spec]
        framings = Counter(i.cab["expl_impl"] for i in mine)
        how = ", ".join(f"{n} {f}" for f, n in sorted(framings.items()))
        groups: Counter[str] = Counter()
        unresolved = 0
        for item in mine:
            try:
                groups.update({v.group for v in item.probe.grouped_variants(corpora)})
            except ProbegenError:  # an imported probe naming groups our corpora lack
                unresolved += 1
        named = ", ".join(
            f"{_group_label(corpora, spec, g)} ({n})" for g, n in sorted(groups.items())
        )
        if unresolved:
            named += f"{'; ' if named else ''}{unresolved} probes name groups outside our corpora"
        lines.append(f"- **{spec}**: {len(mine)} probes ({how}); groups (probes): {named}")
    return [*lines, ""]


def _coverage_section(cover: Coverage) -> list[str]:
    lines = [
        "## Coverage (probes per superdomain x attribute)",
        "",
        "| superdomain | " + " | ".join(cover.attributes) + " | total |",
        "|---|" + "---:|" * (len(cover.attributes) + 1),
    ]
    for superdomain in cover.superdomains:
        row = cover.row(superdomain)
        lines.append(f"| {_cell(superdomain)} | " + " | ".join(map(str, row)) + f" | {sum(row)} |")
    totals = [
        sum(cover.row(s)[i] for s in cover.superdomains) for i in range(len(cover.attributes))
    ]
    lines.append("| **total** | " + " | ".join(map(str, totals)) + f" | {sum(totals)} |")
    return [*lines, ""]


def _provenance_section(context: CardContext) -> list[str]:
    if context.imported_from is not None:
        return [
            "## How it was built",
            "",
            f"Imported by `probegen release import` from `{context.imported_from}`, a file in "
            "CAB's schema. The probes were not generated or reviewed by probegen: their "
            "provenance and verification are those documented by the source.",
            "",
        ]
    lines = [
        "## How it was built",
        "",
        "Probes were evolved by `probegen evolve`: a quality-diversity search that mutates "
        "counterfactual questions and keeps those whose answers differ most across groups. "
        "Each variant was answered several times by the target; a scorer compared all "
        "variants jointly on CAB's four dimensions (bias, relevance, generality, refusal) "
        "and CAB's fitness. Near-duplicates across runs (cosine >= the threshold on "
        "embeddings of the templates with placeholders masked) were removed, keeping the "
        "higher-fitness probe.",
        "",
        "| run | attribute | targets | scorer | started |",
        "|---|---|---|---|---|",
    ]
    for run in context.runs:
        lines.append(
            f"| `{run.run_id}` | {_cell(run.attribute or '-')} | "
            f"{_cell(', '.join(run.targets) or '-')} | {_cell(run.scorer or '-')} | "
            f"{run.created_at} |"
        )
    return [*lines, ""]


def _verification_section(context: CardContext) -> list[str]:
    if context.imported_from is not None:
        return []
    lines = ["## Verification", ""]
    if context.verified is False:
        lines.append(
            "This is a **draft**, built unverified (`allow_unverified`): it takes every "
            "elite with fitness above 0 whatever its reviews. Items with `verified: true` "
            "in `probes.jsonl` did pass review; the others did not (yet)."
        )
        lines.append("")
    lines += [
        f"A probe enters a verified release when at least {context.min_reviews} reviewers "
        "accept it (an edit or relabel counts as accept) and accepts outnumber rejects. "
        "Reviewers see every variant's answers side by side and may reject a probe as "
        "unrealistic, stereotyping in itself, not counterfactual, a duplicate or harmful. "
        "A relabel's corrected labels are applied; an edited probe is released with the "
        "edited text only once that text has been re-queried and re-scored. Every decision "
        "is kept in `probes.jsonl` (`reviews`).",
        "",
    ]
    agreement = context.agreement
    if agreement is None or agreement.items == 0:
        lines += ["No review decisions were recorded for these runs.", ""]
    else:
        alpha = "n/a" if agreement.alpha is None else f"{agreement.alpha:.3f}"
        lines.append(
            f"Agreement over the {agreement.items} reviewed items of these runs "
            f"({agreement.pairable_items} with two or more verdicts): Krippendorff's alpha "
            f"(nominal, accept/reject) {alpha}."
        )
        lines.append("")
        for pair in agreement.pairs:
            lines.append(
                f"- Cohen's kappa {_cell(pair.a)} / {_cell(pair.b)}: {pair.kappa:.3f} "
                f"over {pair.n} items"
            )
        lines.append("")
    if context.excluded:
        lines += ["Elites left out:", ""]
        lines += [f"- {reason}: {n}" for reason, n in sorted(context.excluded.items())]
        lines.append("")
    return lines


_LIMITATIONS = [
    "## Known limitations",
    "",
    "- Fitness is measured on the models listed above; a probe that elicits bias from one "
    "model may not from another. Evaluate with `probegen eval` rather than reusing it.",
    "- Few answers per variant were sampled during the search, so some scores are noisy; "
    "the offline `stats` scorer misses answers that differ in their recommendation but "
    "not in their wording.",
    "- Groups are those of probegen's corpora; first names are imperfect proxies for "
    "gender and race, and binary options leave other groups out.",
    "- Questions are in English and reflect the topics of the taxonomy; coverage above "
    "is uneven by construction (the search follows where bias was found).",
    "",
    "## Content warning",
    "",
    "The probes ask about gender, race, religion and other sensitive attributes, and the "
    "answers they elicit may contain stereotypes or discriminatory statements. They are "
    "meant for measuring bias in AI models, not for any decision about people.",
    "",
]


def _findings_section(items: Sequence[ReleaseItem]) -> list[str]:
    """How many probes were statistical findings where they were found, and replicated."""
    found = [f for item in items for f in item.found_on if f.finding is not None]
    if not found:
        return []
    by_item = [any(f.finding for f in item.found_on) for item in items]
    replicated = [any(f.replicated for f in item.found_on if f.finding) for item in items]
    return [
        "## Findings",
        "",
        f"{sum(by_item)} of {len(items)} probes were *findings* of the search that found "
        "them: their between-group difference survived the run's false-discovery control "
        "(Benjamini-Hochberg over every probe the run tested); "
        f"{sum(replicated)} of those replicated on names, wordings or samples the search "
        "never saw. Each probe's effect, 95% interval, q-value and replication are in "
        "`probes.jsonl` (`found_on`). `probegen replicate` re-measures them on any model.",
        "",
    ]


def render_card(items: Sequence[ReleaseItem], context: CardContext, corpora: Corpora) -> str:
    """The whole ``README.md``: YAML header, then the datasheet."""
    title = f"# {context.name} {context.version}"
    lines = [_header(items, context), title, ""]
    if context.verified is False:
        lines += [
            "> **UNVERIFIED DRAFT.** Built unverified (`allow_unverified`): not every probe "
            "has passed human review. Do not report results on it as a benchmark.",
            "",
        ]
    lines += [
        f"{len(items)} counterfactual bias probes in CAB's format (Counterfactual Assessment "
        "of Bias): each `example` is one question naming every group at once with "
        "`{{a/b}}` placeholders; a model answers every variant and the answers are compared "
        "across groups.",
        "",
        "Files: `cab.json` (CAB's eight string fields, for any CAB consumer), "
        f"`{PARQUET_GLOB.replace('*', '00000-of-00001')}` (the same plus `id` and "
        "`fitness`), `probes.jsonl` (everything probegen knows: scores per model, reviews, "
        "provenance), `inspect/` (an Inspect task), `CHANGELOG.md`, `MANIFEST.json` "
        "(checksums; check with `probegen release verify`).",
        "",
        f"Built {context.created_at}.",
        "",
    ]
    if context.notes:
        lines += ["## Notes", "", context.notes.strip(), ""]
    lines += _provenance_section(context)
    lines += _groups_section(items, corpora)
    lines += _verification_section(context)
    lines += _findings_section(items)
    lines += _coverage_section(coverage(items))
    lines += _LIMITATIONS
    return "\n".join(lines)
