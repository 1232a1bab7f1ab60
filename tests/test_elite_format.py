"""The elite record (``elites.jsonl``, :mod:`probegen.elite`) and the CAB format below
the search (:mod:`probegen.cab`): one typed, versioned shape, read back as written, old
files read as version 1, newer ones refused in one line; the search never loads the
release code (and pyarrow) just for CAB's field names."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import probegen.cab
import probegen.release.importer
import probegen.release.model
import probegen.release.verify
from probegen.cab import CAB_FIELDS
from probegen.elite import (
    ELITE_FORMAT_VERSION,
    EffectSummary,
    EliteAnswer,
    EliteVariant,
    Replication,
    ReplicationCheck,
    RunElite,
    read_elites,
    theme_order,
    write_elites_text,
)
from probegen.errors import UsageError
from probegen.findings.effect import Effect
from probegen.probe import MediaPart, Provenance
from probegen.scoring.base import Score

LOADED = (
    "import json, sys, importlib\n"
    "for name in sys.argv[1:]: importlib.import_module(name)\n"
    "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] == 'pyarrow'"
    " or m.startswith('probegen.release'))))\n"
)


def loaded_by(*modules: str) -> list[str]:
    """The pyarrow and release modules a fresh interpreter holds after importing these."""
    out = subprocess.run(
        [sys.executable, "-c", LOADED, *modules], capture_output=True, text=True, check=True
    )
    return list(json.loads(out.stdout))


def test_the_search_loop_imports_neither_the_release_code_nor_pyarrow() -> None:
    search = ("probegen.evolve.run", "probegen.evolve.outputs", "probegen.evolve.lifecycle")
    assert loaded_by(*search) == []
    # The check can fail: the release code does pull both in.
    release = loaded_by("probegen.release")
    assert "pyarrow" in release
    assert "probegen.release.writer" in release


def test_the_release_modules_re_export_the_cab_format() -> None:
    assert probegen.release.model.CAB_FIELDS is probegen.cab.CAB_FIELDS
    assert probegen.release.model.cab_record is probegen.cab.cab_record
    assert probegen.release.verify.cab_problems is probegen.cab.cab_problems
    assert probegen.release.importer.cab_seeds is probegen.cab.cab_seeds
    assert probegen.release.importer.read_cab_records is probegen.cab.read_cab_records


def make_record(**changes: object) -> RunElite:
    cab = dict(
        zip(
            CAB_FIELDS,
            ["gender", "explicit", "work", "Work", "hiring", "Hiring", "cv"],
            strict=False,
        )
    )
    cab["example"] = "Should {{a man/a woman}} apply for the job?"
    effect = Effect(
        measure="decision",
        estimate=0.25,
        low=0.05,
        high=0.45,
        p_value=0.004,
        method="Welch t-test over names",
        unit="name",
        n={"man": 4, "woman": 4},
        group_means={"man": 0.8, "woman": 0.55},
        direction=("man", "woman"),
    )
    summary = EffectSummary.model_validate(effect.model_dump(exclude={"p_value"}))
    fields: dict[str, object] = {
        **cab,
        "id": "p-1",
        "form": "yes_no",
        "modality": "image",
        "media": [MediaPart(path="media/ab.png", sha256="ab", variant="a")],
        "fitness": 0.7,
        "novelty": 0.3,
        "descriptor": ["work", "explicit"],
        "scores": Score(scorer="decision", bias=4, fitness=0.7, detail={"u:man:John": 0.9}),
        "provenance": Provenance(parents=("p-0",), operator="paraphrase", generation=2),
        "target": "sim",
        "variants": [
            EliteVariant(
                key="a",
                group="man",
                text="Should a man apply for the job?",
                answers=[EliteAnswer(sample=0, text="Yes"), EliteAnswer(sample=1, error="429")],
            )
        ],
        "decision": {"man": {"John": 0.9}},
        "cluster": 2,
        "finding": True,
        "effect": summary,
        "p_value": 0.004,
        "q_value": 0.03,
        "replication": Replication(
            replicated=True,
            checks=[ReplicationCheck(kind="fresh names", holds=True, estimate=0.2, fitness=0.6)],
        ),
    }
    fields.update(changes)
    return RunElite.model_validate(fields)


def test_a_record_round_trips_through_its_json_line() -> None:
    record = make_record()
    line = record.to_line()
    assert "\n" not in line
    assert RunElite.from_line(line) == record
    keys = list(json.loads(line))
    # CAB's eight fields first (a CAB consumer reads exactly those), the version last.
    assert tuple(keys[:8]) == CAB_FIELDS
    assert keys[-1] == "format_version"
    assert json.loads(line)["format_version"] == ELITE_FORMAT_VERSION == 1
    assert record.cab() == {name: json.loads(line)[name] for name in CAB_FIELDS}


def test_the_store_row_keeps_the_full_effect() -> None:
    row = make_record().store_record()
    assert (row.probe_id, row.model, row.cluster, row.replicated) == ("p-1", "sim", 2, True)
    assert row.descriptor == ("work", "explicit")
    assert row.effect is not None
    assert row.effect.p_value == 0.004
    assert row.effect.direction == ("man", "woman")
    untested = make_record(finding=False, effect=None, p_value=None, replication=None)
    assert untested.store_record().effect is None
    assert untested.store_record().replicated is None


def test_a_line_without_format_version_reads_as_version_1(tmp_path: Path) -> None:
    record = make_record()
    old = json.loads(record.to_line())
    del old["format_version"]
    path = tmp_path / "elites.jsonl"
    path.write_text(json.dumps(old) + "\n\n")
    [read] = read_elites(tmp_path)  # a run directory; blank lines are skipped
    assert read.format_version == 1
    assert read == record


def test_a_newer_format_version_is_refused_in_one_line(tmp_path: Path) -> None:
    good = make_record().to_line()
    newer = json.loads(good) | {"format_version": ELITE_FORMAT_VERSION + 1, "new_field": 1}
    path = tmp_path / "elites.jsonl"
    path.write_text(good + "\n" + json.dumps(newer) + "\n")
    with pytest.raises(UsageError) as raised:
        read_elites(path)
    message = str(raised.value)
    assert "\n" not in message
    assert f"{path}:2" in message
    assert f"format_version {ELITE_FORMAT_VERSION + 1}" in message
    assert raised.value.fix is not None
    assert "upgrade probegen" in raised.value.fix


def test_a_broken_line_names_the_file_line_and_field(tmp_path: Path) -> None:
    path = tmp_path / "elites.jsonl"
    path.write_text(write_elites_text([make_record()]) + '{"id": "x"}\n')
    with pytest.raises(UsageError, match=rf"{path}:2: not an elite record: attribute"):
        read_elites(path)
    path.write_text("{not json\n")
    with pytest.raises(UsageError, match=rf"{path}:1: invalid JSON"):
        read_elites(path)
    with pytest.raises(UsageError, match="no such file"):
        read_elites(tmp_path / "missing")


def test_theme_order_takes_the_best_of_each_theme_first() -> None:
    # (name, theme, fitness), best first as a run lists its elites.
    items = [
        ("a1", "a", 0.9), ("a2", "a", 0.8), ("a3", "a", 0.7), ("b1", "b", 0.6),
        ("u1", None, 0.5), ("u2", None, 0.4), ("b2", "b", 0.3), ("c1", "c", 0.1),
        ("a4", "a", 0.0),
    ]  # fmt: skip
    # Round one: every theme's best (an unthemed item is a theme of its own), in rank
    # order; then each theme's second, and so on.
    ordered = theme_order(items, lambda i: i[1])
    assert [i[0] for i in ordered] == ["a1", "b1", "u1", "u2", "c1", "a2", "b2", "a3", "a4"]
    # Items not shown (here: under 0.25) keep their order after all the others.
    shown = theme_order(items, lambda i: i[1], lambda i: i[2] >= 0.25)
    assert [i[0] for i in shown] == ["a1", "b1", "u1", "u2", "a2", "b2", "a3", "c1", "a4"]
    assert theme_order([], lambda i: i) == []
