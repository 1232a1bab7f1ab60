"""Where a decision run's top-10 gap comes from: which groups its probes name, and how.

``search_efficiency.py`` re-measures every top-10 probe of a decision run (``--measure
decision``, e.g. the bundled SmolLM2) on names no run used and stores each probe's
template and signed gap (``heldout_by_probe``). This reads those rows from stored result
files, no model call, and splits each selection's top-10 probes two ways:

- **groups**: whether the probe names a non-binary group among its variants (gender
  probes name two or three of man / woman / non-binary; the same question can be asked
  of either set, which is what the ``groupset`` operator does);
- **voice**: whether the asker speaks of themself (``I'm {{a man/a woman}} and ...``) or
  of someone else (``A {{man/woman}} ...``, ``My {{male/female}} roommate ...``,
  ``{{James/Emily}} ...``).

Per selection and kind of probe: how many of the top-10 probes are of that kind (over
every run), their mean signed gap on fresh names with a 95% t interval (scipy), and, per
selection, a Mann-Whitney test of the gaps with a non-binary group against those without.
``--compare`` adds, paired by seed, the share of each run's top ten that names a
non-binary group, the first file against each other one (``compare.py``: ratio and
difference with bootstrap intervals, Wilcoxon p).

Examples::

    python benchmarks/decision_groups.py \\
        benchmarks/results/search_local_1500_xeon_merged_{map-elites,random}.json --compare
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import table, write_json
from compare import Comparison, compare

from probegen.corpora import Corpora, load_corpora

NON_BINARY = "non-binary"
WITH_NON_BINARY = "with non-binary"
_FIRST_PERSON = re.compile(r"\bI(?:'m| am)\s+(?:a |an )?\{\{", re.IGNORECASE)


def voice(template: str) -> str:
    """``first`` when the asker names their own group, else ``third``."""
    return "first" if _FIRST_PERSON.search(template) else "third"


def kind_of(template: str, attribute: str, corpora: Corpora) -> tuple[str, str]:
    """(groups, voice) of one probe: groups is ``with non-binary`` or ``without``."""
    groups = {v.group for v in corpora.variant_groups(template, attribute)}
    named = WITH_NON_BINARY if NON_BINARY in groups else "without"
    return named, voice(template)


def _interval(values: Sequence[float]) -> str:
    if len(values) < 2:
        return f"{values[0]:.4f}" if values else "-"
    mean = statistics.fmean(values)
    if len(set(values)) == 1:
        return f"{mean:.4f} (all equal)"
    low, high = stats.t.interval(0.95, len(values) - 1, loc=mean, scale=stats.sem(values))
    return f"{mean:.4f} [{low:.4f}, {high:.4f}]"


def read(path: Path, attribute: str, corpora: Corpora) -> dict[str, Any]:
    """Per run: seed, and each top-10 probe's kind and signed gap on fresh names."""
    data = json.loads(path.read_text())
    runs = []
    for run in data["runs"]:
        rows = run.get("heldout_by_probe") or {}
        probes = []
        for probe_id in run.get("top_ids") or []:
            row = rows.get(probe_id)
            if row is None or row.get("signed_gap") is None:
                continue
            named, spoken = kind_of(str(row["template"]), attribute, corpora)
            probes.append({"groups": named, "voice": spoken, "gap": float(row["signed_gap"])})
        runs.append({"seed": run["seed"], "probes": probes})
    selection = data["runs"][0]["selection"] if data["runs"] else path.stem
    return {"file": str(path), "selection": selection, "runs": runs}


def summarise(selection: dict[str, Any]) -> dict[str, Any]:
    """Counts, shares and gaps per kind of probe, and the non-binary test."""
    by_kind: dict[tuple[str, str], list[float]] = defaultdict(list)
    by_groups: dict[str, list[float]] = defaultdict(list)
    for run in selection["runs"]:
        for probe in run["probes"]:
            by_kind[(probe["groups"], probe["voice"])].append(probe["gap"])
            by_groups[probe["groups"]].append(probe["gap"])
    total = sum(len(v) for v in by_kind.values())
    rows = [
        {
            "groups": groups,
            "voice": spoken,
            "probes": len(gaps),
            "share": len(gaps) / total if total else 0.0,
            "mean_gap": statistics.fmean(gaps),
            "gap": _interval(gaps),
        }
        for (groups, spoken), gaps in sorted(by_kind.items())
    ]
    with_nb, without = by_groups.get(WITH_NON_BINARY, []), by_groups.get("without", [])
    test = (
        float(stats.mannwhitneyu(with_nb, without, alternative="two-sided").pvalue)
        if with_nb and without
        else None
    )
    return {"selection": selection["selection"], "file": selection["file"], "rows": rows,
            "non_binary_vs_not_p": test, "probes": total}  # fmt: skip


def nb_share(run: dict[str, Any]) -> float | None:
    """The share of one run's top-10 probes that name a non-binary group."""
    probes: list[dict[str, Any]] = run["probes"]
    if not probes:
        return None
    named = sum(1 for p in probes if p["groups"] == WITH_NON_BINARY)
    return named / len(probes)


def compare_shares(a: dict[str, Any], b: dict[str, Any]) -> Comparison | None:
    """Per seed both ran: the share of the top ten naming a non-binary group, A vs B
    (None with fewer than two such seeds)."""
    shares_b = {r["seed"]: share for r in b["runs"] if (share := nb_share(r)) is not None}
    pairs = [
        (share, shares_b[r["seed"]])
        for r in a["runs"]
        if (share := nb_share(r)) is not None and r["seed"] in shares_b
    ]
    if len(pairs) < 2:
        return None
    metric = f"non-binary share of the top ten: {a['selection']} vs {b['selection']}"
    return compare([x for x, _ in pairs], [y for _, y in pairs], metric=metric)


def main(argv: Sequence[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="+", type=Path, help="search_efficiency.py --json files")
    parser.add_argument("--attr", default="gender", help="the runs' attribute")
    parser.add_argument("--compare", action="store_true", help="first file against the others")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    corpora = load_corpora()
    selections = [read(path, args.attr, corpora) for path in args.files]
    summaries = [summarise(s) for s in selections]
    for summary in summaries:
        print(f"\n{summary['selection']} ({summary['file']}): {summary['probes']} top-10 probes")
        print(table(
            ["groups", "voice", "probes", "share", "signed gap on fresh names, 95% CI"],
            [[r["groups"], r["voice"], r["probes"], f"{r['share']:.2f}", r["gap"]]
             for r in summary["rows"]],
        ))  # fmt: skip
        p = summary["non_binary_vs_not_p"]
        if p is not None:
            print(f"gaps with a non-binary group vs without: Mann-Whitney p = {p:.2g}")
    comparisons = []
    if args.compare:
        for other in selections[1:]:
            found = compare_shares(selections[0], other)
            if found is not None:
                comparisons.append(asdict(found))
                print(f"\n{found.summary()}")
    write_json(args.json, {"summaries": summaries, "comparisons": comparisons})
    return summaries


if __name__ == "__main__":
    main()
