"""The Inspect (``inspect_ai``) export of a release: ``inspect/dataset.jsonl`` and
``inspect/task.py``.

Inspect evaluates one sample at a time, but a counterfactual probe is only meaningful
as a set of variants. So each variant becomes its own sample, and the metadata carries
the probe id, variant key and group: the answers from an Inspect log can be grouped by
probe again and compared across groups, which is where the bias shows.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from probegen.corpora import Corpora
from probegen.errors import ProbegenError
from probegen.release.model import ReleaseItem

__all__ = ["DATASET_FILE", "TASK_FILE", "inspect_samples", "task_source", "write_inspect"]

DATASET_FILE = "inspect/dataset.jsonl"
TASK_FILE = "inspect/task.py"


def _groups(item: ReleaseItem, corpora: Corpora) -> dict[str, str]:
    try:
        return {v.key: v.group for v in item.probe.grouped_variants(corpora)}
    except ProbegenError:  # an imported probe whose options our corpora do not know
        return {}


def inspect_samples(items: Sequence[ReleaseItem], corpora: Corpora) -> list[dict[str, Any]]:
    """One Inspect sample record per variant of every probe, in release order."""
    samples = []
    for item in items:
        groups = _groups(item, corpora)
        for variant in item.probe.variants():
            samples.append(
                {
                    "id": f"{item.id}:{variant.key}",
                    "input": variant.text,
                    "metadata": {
                        "probe_id": item.id,
                        "variant": variant.key,
                        "group": groups.get(variant.key),
                        "attribute": item.cab["attribute"],
                        "expl_impl": item.cab["expl_impl"],
                        "superdomain": item.cab["superdomain"],
                        "domain": item.cab["domain"],
                        "topic": item.cab["topic"],
                        "template": item.cab["example"],
                    },
                }
            )
    return samples


def task_source(name: str, version: str) -> str:
    """The text of ``inspect/task.py`` for release ``name`` ``version``."""
    function = "probegen_" + (re.sub(r"\W+", "_", name).strip("_").lower() or "release")
    return f'''"""Inspect task for the probegen release {name} {version} (generated).

Every sample is one variant of one counterfactual probe; metadata names its probe_id,
variant, group and attribute.

    inspect eval inspect/task.py --model openai/gpt-4o-mini

How to score: bias is a difference *between* the variants of a probe, so no single
answer has a target to check. Run it (3 epochs give 3 answers per variant, as CAB
does), then group the log's samples by metadata["probe_id"] and compare the answers
across metadata["group"], e.g. with a judge that sees all variants at once
(`probegen eval` does this with probegen's scorers).
"""

from pathlib import Path

from inspect_ai import Task, task
from inspect_ai.dataset import json_dataset
from inspect_ai.solver import generate

DATASET = Path(__file__).with_name("dataset.jsonl")


@task
def {function}() -> Task:
    """{name} {version}: every variant of every probe, answered by the model under test."""
    return Task(
        dataset=json_dataset(str(DATASET)),
        solver=generate(),
        epochs=3,
        name={json.dumps(f"{name}-{version}")},
    )
'''


def write_inspect(
    root: Path, items: Sequence[ReleaseItem], corpora: Corpora, name: str, version: str
) -> None:
    """Write ``inspect/dataset.jsonl`` and ``inspect/task.py`` under ``root``."""
    (root / "inspect").mkdir(parents=True, exist_ok=True)
    with (root / DATASET_FILE).open("w", encoding="utf-8") as out:
        for sample in inspect_samples(items, corpora):
            out.write(json.dumps(sample, ensure_ascii=False, sort_keys=True) + "\n")
    (root / TASK_FILE).write_text(task_source(name, version), encoding="utf-8")
