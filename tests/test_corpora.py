"""The shipped corpora, their validation on load, and the ``probegen corpora`` commands."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

import corpora as shipped
from probegen.cli.app import main
from probegen.corpora import Corpora, corpora_root, load_corpora
from probegen.errors import CorpusError, UsageError
from probegen.probe import Framing

ATTRIBUTES = {
    "gender",
    "race",
    "religion",
    "age",
    "disability",
    "nationality",
    "sexual_orientation",
    "socioeconomic_status",
}


@pytest.fixture(scope="module")
def corpora() -> Corpora:
    return load_corpora(shipped.ROOT)


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    """A writable copy of the shipped corpora (data files only)."""
    target = tmp_path / "corpora"
    shutil.copytree(shipped.ROOT, target, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    return target


# --- the shipped corpora ---------------------------------------------------------------------


def test_shipped_corpora_meet_the_minimums(corpora: Corpora) -> None:
    assert set(corpora.attributes) >= ATTRIBUTES
    for attribute in corpora.attributes.values():
        assert 3 <= len(attribute.groups) <= 7, attribute.id
    assert len(corpora.taxonomy.superdomains) >= 8
    domains = list(corpora.taxonomy.domains())
    assert len(domains) >= 40
    assert all(3 <= len(domain.topics) <= 6 for _, domain in domains)
    assert len(corpora.seeds) >= 60


def test_seeds_cover_every_attribute_framing_and_superdomain(corpora: Corpora) -> None:
    components = {part for seed in corpora.seeds for part in seed.attribute.split("+")}
    assert components >= ATTRIBUTES
    assert {seed.expl_impl for seed in corpora.seeds} == set(Framing)
    assert {seed.superdomain for seed in corpora.seeds} == set(corpora.taxonomy.superdomains)
    assert any("+" in seed.attribute for seed in corpora.seeds)
    implicit = {seed.attribute for seed in corpora.seeds if seed.expl_impl is Framing.IMPLICIT}
    assert implicit >= {"gender", "race", "religion", "age", "nationality", "socioeconomic_status"}


def test_every_seed_expands_and_keeps_its_framing(corpora: Corpora) -> None:
    for seed in corpora.seeds:
        grouped = corpora.variant_groups(seed.template, seed.attribute)
        assert len(grouped) >= 2
        assert corpora.infer_framing(seed.template, seed.attribute) is seed.expl_impl
        probe = seed.to_probe()
        assert probe.framing is seed.expl_impl
        assert probe.provenance.operator == "seed"
        assert probe.topic in corpora.taxonomy.domain(seed.superdomain, seed.domain).topics


def test_names_are_balanced_per_group_and_by_gender_within_race(corpora: Corpora) -> None:
    gender = corpora.attribute("gender")
    race = corpora.attribute("race")
    for attribute in (gender, race):
        counts = {len(g.names) for g in attribute.groups.values() if g.names}
        assert len(counts) == 1, attribute.id
    assert gender.groups["man"].names
    assert not gender.groups["non-binary"].names
    for group in race.groups.values():
        by_gender = Counter(next(iter(gender.match(name))) for name in group.names)
        assert by_gender["man"] == by_gender["woman"], group.id


def test_proxies_are_balanced_and_forms_name_one_group(corpora: Corpora) -> None:
    for attribute in corpora.attributes.values():
        assert len({len(g.proxies) for g in attribute.groups.values()}) == 1, attribute.id
        for group in attribute.groups.values():
            for _, form in group.forms():
                assert attribute.match(form) == {group.id}, (attribute.id, form)


def test_attribute_lookup_accepts_dashes_and_lists_known_ids(corpora: Corpora) -> None:
    assert corpora.attribute("sexual-orientation").id == "sexual_orientation"
    assert corpora.attribute("Gender").id == "gender"
    with pytest.raises(UsageError) as caught:
        corpora.attribute("height")
    assert "'height'" in str(caught.value)
    assert "gender" in str(caught.value)
    assert [a.id for a in corpora.components("gender+race")] == ["gender", "race"]
    assert [a.id for a in corpora.components("age")] == ["age"]
    with pytest.raises(UsageError, match="twice"):
        corpora.components("gender+gender")


def test_taxonomy_lookups(corpora: Corpora) -> None:
    domain = corpora.taxonomy.domain("education", "college_admissions")
    assert "personal statement feedback" in domain.topics
    with pytest.raises(UsageError, match="college_admissions"):
        corpora.taxonomy.domain("education", "astrology")
    triples = list(corpora.taxonomy.topics())
    assert len(triples) == sum(len(d.topics) for _, d in corpora.taxonomy.domains())


def test_corpora_root_follows_the_environment(monkeypatch: pytest.MonkeyPatch, copy: Path) -> None:
    monkeypatch.delenv("PROBEGEN_CORPORA", raising=False)
    assert corpora_root() == shipped.ROOT
    monkeypatch.setenv("PROBEGEN_CORPORA", str(copy))
    assert corpora_root() == copy
    assert load_corpora().root == copy.resolve()


def test_load_is_cached_until_a_file_changes(copy: Path) -> None:
    first = load_corpora(copy)
    assert load_corpora(copy) is first
    seeds = copy / "seeds.jsonl"
    lines = seeds.read_text(encoding="utf-8").splitlines(keepends=True)
    seeds.write_text("".join(lines[:-1]), encoding="utf-8")
    assert len(load_corpora(copy).seeds) == len(first.seeds) - 1


def test_small_corpora_without_names_or_seeds_load(copy: Path) -> None:
    (copy / "names.csv").unlink()
    (copy / "seeds.jsonl").unlink()
    loaded = load_corpora(copy)
    assert loaded.seeds == []
    assert not any(g.names for a in loaded.attributes.values() for g in a.groups.values())


# --- validation errors -----------------------------------------------------------------------


def _edit(path: Path, old: str, new: str) -> int:
    """Replace the first ``old`` with ``new``; return the 1-based line where it was."""
    text = path.read_text(encoding="utf-8")
    assert old in text, old
    line = text[: text.index(old)].count("\n") + 1
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return line


def _edit_seed(root: Path, index: int, **changes: str) -> int:
    path = root / "seeds.jsonl"
    lines = path.read_text(encoding="utf-8").splitlines()
    record = json.loads(lines[index])
    record.update(changes)
    lines[index] = json.dumps(record)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return index + 1


def _bad_yaml(root: Path) -> list[str]:
    line = _edit(root / "attributes/gender.yaml", "  woman:\n", "  woman: [oops\n")
    return [f"attributes/gender.yaml:{line + 1}", "invalid YAML"]


def _unknown_field(root: Path) -> list[str]:
    line = _edit(
        root / "attributes/gender.yaml",
        "    label: woman\n",
        "    label: woman\n    colour: blue\n",
    )
    return [
        f"attributes/gender.yaml:{line + 1}",
        "groups.woman.colour",
        "unknown field",
        "surface_forms",
    ]


def _missing_field(root: Path) -> list[str]:
    line = _edit(root / "attributes/religion.yaml", "    label: Hindu\n", "")
    return [f"attributes/religion.yaml:{line - 1}", "groups.hindu", "'label'"]


def _wrong_type(root: Path) -> list[str]:
    line = _edit(root / "attributes/age.yaml", "    label: older adult\n", "    label: [old]\n")
    return [f"attributes/age.yaml:{line}", "groups.older.label", "string"]


def _duplicate_surface_form(root: Path) -> list[str]:
    line = _edit(root / "attributes/religion.yaml", "[Muslim, Muslims,", "[Muslim, Catholic,")
    return [
        f"attributes/religion.yaml:{line}",
        "groups.muslim.surface_forms[1]",
        "'Catholic'",
        "christian",
    ]


def _form_inside_another_group(root: Path) -> list[str]:
    _edit(root / "attributes/race.yaml", "[white, white person,", "[white, Black and white,")
    return ["attributes/race.yaml:", "groups.white.surface_forms[1]", "'Black'", "two groups"]


def _duplicate_key(root: Path) -> list[str]:
    path = root / "attributes/age.yaml"
    path.write_text(path.read_text(encoding="utf-8") + "label: Again\n", encoding="utf-8")
    line = path.read_text(encoding="utf-8").count("\n")
    return [f"attributes/age.yaml:{line}", "label", "duplicate key"]


def _id_not_file_name(root: Path) -> list[str]:
    _edit(root / "attributes/age.yaml", "id: age\n", "id: years\n")
    return ["attributes/age.yaml:1", "'years'", "age.yaml"]


def _unbalanced_proxies(root: Path) -> list[str]:
    _edit(root / "attributes/religion.yaml", "      - who is observing Vesak\n", "")
    return ["attributes/religion.yaml:", "proxies are unbalanced", "buddhist 2", "buddhist"]


def _unbalanced_names(root: Path) -> list[str]:
    _edit(root / "names.csv", "Neil,man,white,,\n", "")
    return ["names.csv", "column 'gender'", "man 59", "woman 60", "1 to 'man'"]


def _names_unbalanced_by_gender(root: Path) -> list[str]:
    _edit(root / "names.csv", "Neil,man,white,,\n", "Neil,woman,white,,\n")
    _edit(root / "names.csv", "Mary,woman,,,\n", "Mary,man,,,\n")
    return ["names.csv", "column 'race'", "'white'", "man 9", "woman 11"]


def _names_unknown_group(root: Path) -> list[str]:
    line = _edit(root / "names.csv", "Neil,man,white,,", "Neil,man,purple,,")
    return [f"names.csv:{line}", "'purple'", "race", "hispanic"]


def _names_unknown_column(root: Path) -> list[str]:
    _edit(
        root / "names.csv",
        "name,gender,race,religion,nationality",
        "name,gender,race,religion,height",
    )
    return ["names.csv:1", "'height'", "gender"]


def _taxonomy_missing_topics(root: Path) -> list[str]:
    line = _edit(
        root / "taxonomy.yaml",
        "        label: Choosing courses and majors\n",
        "        label: Choosing courses and majors\n        topic: []\n",
    )
    return [
        f"taxonomy.yaml:{line + 1}",
        "superdomains.education.domains.course_selection.topic",
        "unknown field",
    ]


def _taxonomy_duplicate_domain(root: Path) -> list[str]:
    line = _edit(root / "taxonomy.yaml", "      early_childhood:\n", "      hiring:\n")
    return [f"taxonomy.yaml:{line}", "'hiring'", "employment"]


def _seed_invalid_json(root: Path) -> list[str]:
    path = root / "seeds.jsonl"
    path.write_text(path.read_text(encoding="utf-8") + '{"template": "x",\n', encoding="utf-8")
    line = path.read_text(encoding="utf-8").count("\n")
    return [f"seeds.jsonl:{line}", "invalid JSON"]


def _seed_unknown_field(root: Path) -> list[str]:
    line = _edit_seed(root, 3, colour="blue")
    return [f"seeds.jsonl:{line}", "unknown field 'colour'", "template"]


def _seed_unknown_domain(root: Path) -> list[str]:
    line = _edit_seed(root, 2, domain="astrology")
    return [f"seeds.jsonl:{line}", "'astrology'", "childcare"]


def _seed_unknown_topic(root: Path) -> list[str]:
    line = _edit_seed(root, 2, topic="space travel")
    return [f"seeds.jsonl:{line}", "'space travel'", "nanny interviews"]


def _seed_unknown_attribute(root: Path) -> list[str]:
    line = _edit_seed(root, 4, attribute="height")
    return [f"seeds.jsonl:{line}", "'height'", "gender"]


def _seed_option_outside_attribute(root: Path) -> list[str]:
    line = _edit_seed(root, 1, template="As a {{man/robot}}, should I take the team lead role?")
    return [f"seeds.jsonl:{line}", "'robot'", "attribute 'gender'"]


def _seed_framing_disagrees(root: Path) -> list[str]:
    line = _edit_seed(root, 0, expl_impl="explicit")
    return [f"seeds.jsonl:{line}", "expl_impl", "'implicit'"]


def _seed_bad_form(root: Path) -> list[str]:
    line = _edit_seed(root, 0, form="rant")
    return [f"seeds.jsonl:{line}", "form", "advice"]


BREAKAGES: dict[str, Callable[[Path], list[str]]] = {
    "bad-yaml": _bad_yaml,
    "unknown-field": _unknown_field,
    "missing-field": _missing_field,
    "wrong-type": _wrong_type,
    "duplicate-surface-form": _duplicate_surface_form,
    "form-inside-another-group": _form_inside_another_group,
    "duplicate-key": _duplicate_key,
    "id-not-file-name": _id_not_file_name,
    "unbalanced-proxies": _unbalanced_proxies,
    "unbalanced-names": _unbalanced_names,
    "names-unbalanced-by-gender": _names_unbalanced_by_gender,
    "names-unknown-group": _names_unknown_group,
    "names-unknown-column": _names_unknown_column,
    "taxonomy-unknown-field": _taxonomy_missing_topics,
    "taxonomy-duplicate-domain": _taxonomy_duplicate_domain,
    "seed-invalid-json": _seed_invalid_json,
    "seed-unknown-field": _seed_unknown_field,
    "seed-unknown-domain": _seed_unknown_domain,
    "seed-unknown-topic": _seed_unknown_topic,
    "seed-unknown-attribute": _seed_unknown_attribute,
    "seed-option-outside-attribute": _seed_option_outside_attribute,
    "seed-framing-disagrees": _seed_framing_disagrees,
    "seed-bad-form": _seed_bad_form,
}


@pytest.mark.parametrize("breakage", list(BREAKAGES), ids=list(BREAKAGES))
def test_a_broken_file_is_one_line_naming_file_line_and_fix(copy: Path, breakage: str) -> None:
    fragments = BREAKAGES[breakage](copy)
    with pytest.raises(CorpusError) as caught:
        load_corpora(copy)
    message = str(caught.value)
    assert "\n" not in message
    assert "(fix: " in message
    for fragment in fragments:
        assert fragment in message, (fragment, message)


def test_missing_corpora_directory(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match="does not exist"):
        load_corpora(tmp_path / "nowhere")


# --- the command line ------------------------------------------------------------------------


def _probegen(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "probegen", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200", **(env or {})},
        timeout=120,
    )


def test_check_command_summarizes_the_shipped_corpora() -> None:
    result = _probegen("corpora", "check")
    assert result.returncode == 0, result.stderr
    for fragment in ("corpora OK", "sexual_orientation", "gender+race", "community", "seeds"):
        assert fragment in result.stdout


def test_check_command_on_broken_corpora_is_one_line_exit_2(copy: Path) -> None:
    _edit_seed(copy, 0, expl_impl="explicit")
    for args, env in (
        (("corpora", "check", "--corpora", str(copy)), {}),
        (("corpora", "check"), {"PROBEGEN_CORPORA": str(copy)}),
    ):
        result = _probegen(*args, env=env)
        assert result.returncode == 2
        assert "Traceback" not in result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, result.stderr
        assert lines[0].startswith("error: ")
        assert "seeds.jsonl:1" in lines[0]


def _run_main(*args: str) -> int:
    with pytest.raises(SystemExit) as caught:
        main(list(args))
    return int(caught.value.code or 0)


def test_show_command_lists_groups_forms_and_proxies(capsys: pytest.CaptureFixture[str]) -> None:
    assert _run_main("corpora", "show", "religion") == 0
    out = capsys.readouterr().out
    for fragment in ("christian", "muslim", "atheist", "mosque", "Ramadan"):
        assert fragment in out
    assert _run_main("corpora", "show", "gender") == 0
    out = capsys.readouterr().out
    assert "Emily" in out
    assert "him" in out


def test_show_command_rejects_an_unknown_attribute(capsys: pytest.CaptureFixture[str]) -> None:
    assert _run_main("corpora", "show", "height") == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert "'height'" in err
    assert "religion" in err
