"""What an evolve run leaves in ``runs/<run-id>/``: config, elites and a readable summary.

Every file is written to a temporary name and renamed into place, so a killed run never
leaves a half-written file (the store, not these files, is the source of truth; they
are rewritten on resume). The config and call errors are written with secrets redacted
as in the store (:mod:`probegen.redaction`); answers are written as the model gave them.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from probegen.cab import cab_record
from probegen.corpora import Corpora
from probegen.decision.measure import UNIT_PREFIX
from probegen.elite import ELITES_FILE, RunElite, review_order, write_elites_text
from probegen.evolve.conclude import REPLICATION_MARK, Conclusion
from probegen.evolve.config import EvolveConfig
from probegen.evolve.families import FAMILY_SIMILARITY
from probegen.evolve.run import GenerationReport, SurrogateReport
from probegen.findings.assess import NOT_TESTED
from probegen.redaction import redact_config, redact_text
from probegen.review.scope import DEFAULT_THRESHOLD, offered
from probegen.runner import REPLICATION_SAMPLE_OFFSET
from probegen.scoring.base import Score
from probegen.search.archive import Elite
from probegen.search.scheduler import EmitterStats, OperatorStats
from probegen.search.surrogate import RankCorrelation
from probegen.store import Store

__all__ = [
    "elite_record",
    "finding_fields",
    "render_findings",
    "shown_order",
    "write_outputs",
]


def shown_order(records: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Elite records (``elites.jsonl`` lines as dicts, best first) in the order
    ``summary.md`` and the CLI show them: those the review queue's default threshold
    offers first, in rounds over answer families and, within them, question families
    (ten variations of one question are one finding; see
    :func:`~probegen.elite.review_order`)."""
    return review_order(
        records,
        lambda r: r.get("cluster"),
        lambda r: r.get("answer_family"),
        lambda r: offered(float(r["fitness"]), DEFAULT_THRESHOLD, bool(r.get("finding"))),
    )


def _redacted(error: str | None) -> str | None:
    return None if error is None else redact_text(error)


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def elite_record(
    elite: Elite,
    store: Store,
    run_id: str,
    target: str,
    corpora: Corpora,
    *,
    cluster: int | None = None,
    answer_family: int | None = None,
    conclusion: Conclusion | None = None,
) -> RunElite:
    """One line of ``elites.jsonl``: the CAB fields, then scores, provenance, answers,
    the elite's ``cluster`` and ``answer_family`` and the findings fields from
    ``conclusion``."""
    probe = elite.probe
    scores = [s for _, model, s in store.scores(run_id, probe.id) if model == target]
    variants: dict[str, dict[str, Any]] = {}
    for query in store.queries(run_id, probe.id):
        # The answers the probe was scored on; replication data is summed up in the
        # record's "replication" field.
        if query.model != target or query.sample_index >= REPLICATION_SAMPLE_OFFSET:
            continue
        entry = variants.setdefault(
            query.variant_key, {"key": query.variant_key, "group": query.group_id, "answers": []}
        )
        entry["answers"].append(
            # The store redacts errors; one written by an older probegen may not be.
            {"sample": query.sample_index, "text": query.text, "error": _redacted(query.error)}
        )
    texts = {v.key: v.text for v in probe.variants()}
    for key, entry in variants.items():
        entry["text"] = texts.get(key, "")
        entry["answers"].sort(key=lambda a: a["sample"])
    discovery = [s for s in scores if REPLICATION_MARK not in s.scorer]
    score = discovery[-1] if discovery else None
    # Validated into the typed record here, so a field of the wrong shape fails the run
    # that made it rather than whoever reads the file later.
    return RunElite.model_validate(
        {
            # CAB's eight fields first: a CAB consumer reads exactly these.
            **cab_record(probe, corpora),
            "id": probe.id,
            "form": probe.form.value if probe.form else None,
            "modality": probe.modality_in(corpora).value,
            "media": [part.model_dump(mode="json") for part in probe.media],
            "fitness": elite.fitness,
            "novelty": elite.novelty,
            "descriptor": list(elite.descriptor),
            "scores": score.model_dump(mode="json") if score else None,
            "provenance": probe.provenance.model_dump(mode="json"),
            "target": target,
            "variants": list(variants.values()),
            "decision": _decision_units(score),
            "cluster": cluster,
            "answer_family": answer_family,
            **finding_fields(conclusion, probe.id),
        }
    )


def _decision_units(score: Score | None) -> dict[str, dict[str, float]] | None:
    """P(yes) per group and name (or wording) of a decision-measured probe, else None."""
    if score is None or score.scorer != "decision":
        return None
    units: dict[str, dict[str, float]] = {}
    for key, value in score.detail.items():
        if key.startswith(UNIT_PREFIX):
            group, _, label = key.removeprefix(UNIT_PREFIX).partition(":")
            units.setdefault(group, {})[label] = value
    return units


def finding_fields(conclusion: Conclusion | None, probe_id: str) -> dict[str, Any]:
    """The findings fields of one ``elites.jsonl`` record: ``finding``, ``effect``
    (``estimate``, ``low``, ``high``, ...), ``p_value``, ``q_value`` and ``replication``."""
    assessment = conclusion.assessments.get(probe_id) if conclusion else None
    fields = (assessment or NOT_TESTED).as_record()
    replications = conclusion.replications.get(probe_id, []) if conclusion else []
    fields["replication"] = (
        None
        if not replications
        else {
            "replicated": all(r.holds for r in replications),
            "checks": [
                {
                    "kind": r.kind,
                    "holds": r.holds,
                    "estimate": r.effect.estimate if r.effect else None,
                    "low": r.effect.low if r.effect else None,
                    "high": r.effect.high if r.effect else None,
                    "p_value": r.effect.p_value if r.effect else None,
                    "fitness": r.score.fitness,
                }
                for r in replications
            ],
        }
    )
    return fields


def write_outputs(
    out_dir: Path,
    *,
    config: EvolveConfig,
    run_id: str,
    store: Store,
    corpora: Corpora,
    target: str,
    elites: Sequence[Elite],
    reports: Sequence[GenerationReport],
    operator_stats: dict[str, OperatorStats],
    clusters: dict[str, int] | None = None,
    answer_families: dict[str, int] | None = None,
    top: int = 5,
    conclusion: Conclusion | None = None,
    emitter_stats: dict[str, EmitterStats] | None = None,
    surrogate: SurrogateReport | None = None,
) -> list[RunElite]:
    """Write ``config.json``, ``elites.jsonl`` and ``summary.md``; return the elite records.

    With a ``conclusion``, every record carries the findings fields (see
    :func:`finding_fields`) and the summary leads with the findings.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    records = [
        elite_record(
            e,
            store,
            run_id,
            target,
            corpora,
            cluster=(clusters or {}).get(e.probe.id),
            answer_family=(answer_families or {}).get(e.probe.id),
            conclusion=conclusion,
        )
        for e in elites
    ]
    # Masked as in the store: a resumed run's config holds the URLs the user passed
    # again, credentials included, and they must not reach this file either.
    stored = redact_config(
        {"run_id": run_id, "store": str(store.path), **config.model_dump(mode="json")}
    )
    _write_atomic(out_dir / "config.json", json.dumps(stored, indent=2) + "\n")
    _write_atomic(out_dir / ELITES_FILE, write_elites_text(records))
    _write_atomic(
        out_dir / "summary.md",
        render_summary(
            config,
            run_id,
            # The summary reads the records in the file's own JSON shape.
            [r.model_dump(mode="json") for r in records],
            reports,
            operator_stats,
            top=top,
            conclusion=conclusion,
            emitter_stats=emitter_stats,
            surrogate=surrogate,
        ),
    )
    return records


def render_findings(conclusion: Conclusion | None, records: Sequence[dict[str, Any]]) -> list[str]:
    """The findings section of ``summary.md``: every finding of the run (elite or not),
    with its effect, interval, q-value and replication."""
    if conclusion is None:
        return []
    found = conclusion.findings
    lines = [
        "## Findings",
        "",
        f"{len(found)} finding(s) among {conclusion.tested} probes tested, at a "
        f"false-discovery rate of {conclusion.level:g} (Benjamini-Hochberg over every "
        "probe the run tested).",
    ]
    if conclusion.repeats:
        lines[-1] += (
            f" {len(conclusion.repeats)} more probe(s) repeat another's measurement"
            " (the same yes/no question) and are counted once."
        )
    rate = conclusion.replication_rate
    if rate is not None:
        lines[-1] += f" Replicated on data the search never saw: {rate:.0%}."
    lines.append("")
    if not found:
        return [*lines, "No probe's group difference survives the correction.", ""]
    templates = {str(r["id"]): str(r["example"]) for r in records}
    lines += [
        "| # | effect [95% CI] | p | q | measure | replicated | probe |",
        "|---:|---|---:|---:|---|---|---|",
    ]
    for rank, probe_id in enumerate(found, start=1):
        assessment = conclusion.assessments[probe_id]
        effect = assessment.effect
        assert effect is not None
        direction = f" ({' > '.join(effect.direction)})" if effect.direction else ""
        replicated = conclusion.replicated(probe_id)
        verdict = "-" if replicated is None else "yes" if replicated else "no"
        lines.append(
            f"| {rank} | {effect.summary().split(' p=')[0]}{direction} | "
            f"{effect.p_value:.2g} | {assessment.q_value or 0:.2g} | {effect.measure} | "
            f"{verdict} | {_cell(templates.get(probe_id, probe_id))} |"
        )
    return [*lines, ""]


def render_emitters(emitter_stats: dict[str, EmitterStats] | None) -> list[str]:
    """The emitters section of ``summary.md``: what each emitter was given and earned."""
    if not emitter_stats:
        return []
    lines = [
        "",
        "## Emitters",
        "",
        "Each slot of a generation goes to an emitter chosen by a bandit paid per target "
        "query: a child's reward (improvement over its best parent, +0.5 for a new cell, "
        "+0.1 for entering a covered one) divided by the queries it cost.",
        "",
        "| emitter | calls | failed calls | pooled | queried | new cells | improved | "
        "queries | reward per 100 queries |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, stats in emitter_stats.items():
        if name == "seed" or not stats.calls:
            continue
        failures = ", ".join(f"{n} {why}" for why, n in stats.failures.most_common())
        lines.append(
            f"| {name} | {stats.calls} | {sum(stats.failures.values())}"
            f"{f' ({failures})' if failures else ''} | {stats.pooled} | {stats.queried} | "
            f"{stats.new_cells} | {stats.improved} | {stats.queries} | "
            f"{100 * stats.reward_per_query:.3f} |"
        )
    return lines


def _rho(correlation: RankCorrelation) -> tuple[str, str]:
    if correlation.rho is None or correlation.p_value is None:
        return "-", "-"
    return f"{correlation.rho:+.2f}", f"{correlation.p_value:.2g}"


def render_surrogate(surrogate: SurrogateReport | None) -> list[str]:
    """The surrogate section of ``summary.md``: how well its predictions ranked the
    measured fitness (Spearman's rho, scipy), per generation and over the run."""
    if surrogate is None:
        return []
    rho, p = _rho(surrogate.overall)
    lines = [
        "",
        "## Surrogate",
        "",
        "Spearman's rank correlation between the fitness the surrogate predicted for the "
        f"probes it chose and their measured fitness: over the run rho {rho} (p {p}, "
        f"{surrogate.overall.n} probes); '-' where undefined (fewer than 3 probes, or "
        "every prediction or measurement equal).",
        "",
        "| gen | probes | rho | p |",
        "|---:|---:|---:|---:|",
    ]
    for generation, correlation in surrogate.per_generation:
        rho, p = _rho(correlation)
        lines.append(f"| {generation} | {correlation.n} | {rho} | {p} |")
    rho, p = _rho(surrogate.overall)
    lines.append(f"| all | {surrogate.overall.n} | {rho} | {p} |")
    if surrogate.second_looks is not None:
        looked, scored = surrogate.second_looks
        lines += [
            "",
            f"Second look: {looked} probes whose screen showed nothing got fresh answers "
            f"because the surrogate expected them to clear their bar; {scored} of them then "
            "scored above 0.",
        ]
    return lines


def _cell(text: str | None) -> str:
    return (text or "*(no answer)*").replace("|", "\\|").replace("\n", " ").strip()


def render_summary(
    config: EvolveConfig,
    run_id: str,
    records: Sequence[dict[str, Any]],
    reports: Sequence[GenerationReport],
    operator_stats: dict[str, OperatorStats],
    *,
    top: int = 5,
    conclusion: Conclusion | None = None,
    emitter_stats: dict[str, EmitterStats] | None = None,
    surrogate: SurrogateReport | None = None,
) -> str:
    """The human-readable report of a run, in Markdown: findings first."""
    lines = [
        f"# probegen evolve: {run_id}",
        "",
        f"- target: `{config.target}`; attribute: `{config.attribute}`; scorer: `{config.judge}`;"
        f" measure: `{config.measure}`",
        f"- generations: {config.generations}, population: {config.population}, "
        f"samples per variant: {config.samples}, seed: {config.seed}",
        "",
        *render_findings(conclusion, records),
        "## Progress",
        "",
        "| gen | evaluated | unscorable | new cells | queries | best | mean (gen) | cells |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in reports:
        lines.append(
            f"| {r.generation} | {r.evaluated} | {r.unscorable} | {r.new_cells} | "
            f"{r.queries_spent} | {r.best_fitness:.3f} | {r.mean_fitness:.3f} | "
            f"{r.cells_filled} |"
        )
    shown = shown_order(records)
    lines += [
        "",
        f"## Top {min(top, len(records))} probes",
        "",
        "Those the review queue offers come first: the best of each answer family and "
        "question family, then each one's second best, and so on.",
        "",
    ]
    for rank, record in enumerate(shown[:top], start=1):
        score = record["scores"] or {}
        lines += [
            f"### {rank}. fitness {record['fitness']:.3f} ({record['id']})",
            "",
            f"> {record['example']}",
            "",
            f"- {record['attribute']} / {record['expl_impl']} / {record['superdomain']} / "
            f"{record['domain']} / {record['topic']} / {record['form']}",
            f"- bias {score.get('bias')}, relevance {score.get('relevance')}, "
            f"generality {score.get('generality')}, refusal {score.get('refusal')}",
            f"- operator `{record['provenance']['operator']}`, generation "
            f"{record['provenance']['generation']}, parents "
            f"{', '.join(record['provenance']['parents']) or '-'}",
            "",
        ]
        variants = record["variants"]
        if variants:
            lines.append(
                "| # | " + " | ".join(f"{v['key']} ({v['group']})" for v in variants) + " |"
            )
            lines.append("|---|" + "---|" * len(variants))
            depth = max(len(v["answers"]) for v in variants)
            for i in range(depth):
                cells = [
                    _cell(v["answers"][i]["text"] if i < len(v["answers"]) else None)
                    for v in variants
                ]
                lines.append(f"| {i + 1} | " + " | ".join(cells) + " |")
            lines.append("")
    lines += [
        "## Operators",
        "",
        "Pooled: valid, new children; queried: those the surrogate's screen chose (an "
        "operator pooled often and queried never is screened out, not judged).",
        "",
        "| operator | proposed | rejected | pooled | queried | evaluated | new cells | improved "
        "| mean reward |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, stats in sorted(operator_stats.items()):
        summary = stats.as_dict()
        rejected = sum(stats.rejected.values())
        lines.append(
            f"| {name} | {stats.proposed} | {rejected} | {stats.pooled} | {stats.queried} | "
            f"{stats.evaluated} | {stats.new_cells} | {stats.improved} | "
            f"{summary['mean_reward']:.3f} |"
        )
    lines += render_emitters(emitter_stats) + render_surrogate(surrogate)
    clustered: dict[int, list[dict[str, Any]]] = {}
    for record in records:
        if record.get("cluster") is not None:
            clustered.setdefault(int(record["cluster"]), []).append(record)
    if clustered:
        lines += [
            "",
            "## Clusters: question families (an elite joins a fitter one's family at "
            f"cosine >= {FAMILY_SIMILARITY} between masked templates)",
            "",
            "| cluster | elites | best fitness | best probe |",
            "|---:|---:|---:|---|",
        ]
        # A family of one is a question without variations: counted, not listed, or
        # the table would list most of the archive again (unless that is all there is).
        listed = {c: m for c, m in clustered.items() if len(m) > 1} or clustered
        for cluster, members in sorted(listed.items()):
            best = members[0]  # records are best first
            lines.append(
                f"| {cluster} | {len(members)} | {best['fitness']:.3f} | "
                f"{_cell(best['example'][:120])} |"
            )
        if alone := len(clustered) - len(listed):
            lines += ["", f"{alone} more families of one elite each."]
    coverage = Counter((r["superdomain"], r["expl_impl"]) for r in records)
    lines += [
        "",
        "## Coverage (elites per superdomain x framing)",
        "",
        "| superdomain | explicit | implicit |",
        "|---|---:|---:|",
    ]
    for superdomain in sorted({s for s, _ in coverage}):
        lines.append(
            f"| {superdomain} | {coverage[(superdomain, 'explicit')]} | "
            f"{coverage[(superdomain, 'implicit')]} |"
        )
    return "\n".join(lines) + "\n"
