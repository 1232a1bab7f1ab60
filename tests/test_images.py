"""Image sets: the manifest format and its checks, the shipped document set, the renderer
(deterministic, small, readable by OCR), the wording files, and image seed probes."""

from __future__ import annotations

import io
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from PIL import Image

import corpora as shipped
from probegen import evolve
from probegen.cli.documents import main
from probegen.corpora import Corpora, load_corpora
from probegen.corpora.images import ImageSet, pairs_for, read_image_set
from probegen.embeddings import Embedder
from probegen.errors import CorpusError
from probegen.evolve.config import EvolveConfig
from probegen.evolve.lifecycle import make_evolution
from probegen.evolve.run import Evolution
from probegen.imaging.content import load_documents, load_prompts
from probegen.imaging.documents import (
    HEIGHT,
    WIDTH,
    Document,
    Figure,
    Layout,
    Person,
    Section,
    printable,
    render_document,
    render_note,
)
from probegen.imaging.seeds import image_seeds
from probegen.imaging.sets import MANIFEST_HEADER
from probegen.index import EmbeddingIndex
from probegen.models.simulator import SimulatorBackend
from probegen.probe import Framing, Modality
from probegen.store import Store

SHIPPED_SET = shipped.ROOT / "images" / "documents"


@pytest.fixture(scope="module")
def corpora() -> Corpora:
    return load_corpora(shipped.ROOT)


@pytest.fixture(scope="module")
def documents_set(corpora: Corpora) -> ImageSet:
    [image_set] = [s for s in corpora.image_sets if s.id == "documents"]
    return image_set


def png(colour: str) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8), colour).save(out, format="PNG")
    return out.getvalue()


# --- the manifest format and its checks ------------------------------------------------------

GOOD: dict[str, Any] = {
    "description": "two photos of one scene",
    "source": "my camera",
    "license": "CC-BY-4.0",
    "entries": [
        {"file": "a.png", "groups": {"gender": "man"}, "pair": "office", "kind": "desk"},
        {"file": "b.png", "groups": {"gender": "woman"}, "pair": "office", "kind": "desk"},
    ],
}


@pytest.fixture
def write_set(tmp_path: Path, corpora: Corpora) -> Callable[[dict[str, Any]], ImageSet]:
    """Writes a manifest (and two PNGs) into a fresh set folder and reads it."""
    folder = tmp_path / "images" / "mine"
    folder.mkdir(parents=True)
    (folder / "a.png").write_bytes(png("blue"))
    (folder / "b.png").write_bytes(png("red"))

    def write(manifest: dict[str, Any]) -> ImageSet:
        (folder / "manifest.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
        return read_image_set(folder / "manifest.yaml", corpora.attributes)

    return write


def with_entry(index: int, **fields: Any) -> dict[str, Any]:
    manifest = yaml.safe_load(yaml.safe_dump(GOOD))
    entry = manifest["entries"][index]
    for key, value in fields.items():
        if value is None:
            entry.pop(key, None)
        else:
            entry[key] = value
    return manifest


def test_a_valid_manifest_loads_with_set_defaults(
    write_set: Callable[[dict[str, Any]], ImageSet],
) -> None:
    image_set = write_set(GOOD)
    assert [e.file for e in image_set.entries] == ["a.png", "b.png"]
    assert {e.license for e in image_set.entries} == {"CC-BY-4.0"}
    [pair] = image_set.pairs
    assert pair.varying == ("gender",)
    assert pair.serves(["gender"])
    assert not pair.serves(["race"])
    assert set(pair.by_group(["gender"])) == {"man", "woman"}


@pytest.mark.parametrize(
    ("manifest", "where", "problem"),
    [
        (with_entry(1, file="missing.png"), "entries[1].file", "does not exist"),
        (with_entry(0, file="../a.png"), "entries[0].file", "outside the set's folder"),
        (with_entry(0, file="notes.txt"), "entries[0].file", "not an image file name"),
        (with_entry(1, file="text.png"), "entries[1].file", "is not an image"),
        (with_entry(1, file="a.png"), "entries[1].file", "already listed as entries[0]"),
        (with_entry(1, groups={"genre": "woman"}), "entries[1].groups.genre", "not an attribute"),
        (with_entry(1, groups={"gender": "female"}), "entries[1].groups.gender", "not a group"),
        (with_entry(1, groups={}), "entries[1].groups", "is empty"),
        (with_entry(1, groups={"gender": "man"}), "entries[1].groups", "same group"),
        (
            with_entry(1, groups={"gender": "woman", "race": "white"}),
            "entries[1].groups",
            "lists gender, race",
        ),
        (with_entry(1, pair="garden"), "entries[0].pair", "has only this image"),
        (with_entry(1, kind="kitchen"), "entries[1].kind", "differs from 'desk'"),
        (with_entry(1, kind="Desk Photo"), "entries[1].kind", "not a snake_case id"),
        (with_entry(1, license="unknown"), "entries[1].license", "not an SPDX license id"),
        (with_entry(1, license="CC BY 4.0"), "entries[1].license", "not an SPDX license id"),
        (with_entry(1, colour="blue"), "entries[1].colour", "unknown field"),
        (with_entry(1, pair=None), "entries[1]", "missing required field 'pair'"),
    ],
)
def test_manifest_errors_are_one_line_naming_file_entry_field_and_fix(
    write_set: Callable[[dict[str, Any]], ImageSet],
    manifest: dict[str, Any],
    where: str,
    problem: str,
    tmp_path: Path,
) -> None:
    (tmp_path / "images" / "mine" / "text.png").write_text("not a picture")
    with pytest.raises(CorpusError) as caught:
        write_set(manifest)
    message = str(caught.value)
    assert "\n" not in message
    assert re.match(r"\S*images/mine/manifest\.yaml:\d+: ", message), message
    assert f": {where}" in message, message
    assert problem in message, message
    assert "(fix: " in message, message


def test_license_and_source_are_required_somewhere(
    write_set: Callable[[dict[str, Any]], ImageSet],
) -> None:
    no_defaults = {k: v for k, v in GOOD.items() if k not in ("license", "source")}
    with pytest.raises(CorpusError, match=r"entries\[0\]\.source: missing"):
        write_set(no_defaults)
    sourced = {**no_defaults, "source": "my camera"}
    with pytest.raises(CorpusError, match=r"entries\[0\]\.license: missing.*fix: give an SPDX"):
        write_set(sourced)
    bad_default = {**GOOD, "license": "TODO"}
    with pytest.raises(CorpusError, match=r"manifest\.yaml:\d+: license: 'TODO' is not an SPDX"):
        write_set(bad_default)


def test_image_sets_load_with_the_corpora_and_a_folder_needs_a_manifest(tmp_path: Path) -> None:
    root = tmp_path / "corpora"
    shutil.copytree(shipped.ROOT, root, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    mine = root / "images" / "mine"
    mine.mkdir()
    (mine / "a.png").write_bytes(png("blue"))
    with pytest.raises(CorpusError, match=r"images/mine: no manifest\.yaml \(fix: describe"):
        load_corpora(root)
    (mine / "b.png").write_bytes(png("red"))
    (mine / "manifest.yaml").write_text(yaml.safe_dump(GOOD))
    loaded = load_corpora(root)
    assert [s.id for s in loaded.image_sets] == ["documents", "mine"]
    (mine / "manifest.yaml").write_text(yaml.safe_dump(with_entry(1, pair="other")))
    with pytest.raises(CorpusError, match=r"entries\[0\]\.pair: pair 'office' has only this"):
        load_corpora(root)


# --- the shipped document set ----------------------------------------------------------------


def test_the_shipped_set_is_small_and_every_pair_differs_only_in_its_group(
    documents_set: ImageSet,
) -> None:
    entries = documents_set.entries
    assert 30 <= len(entries) <= 48
    assert sum(e.path.stat().st_size for e in entries) < 2_000_000
    for entry in entries:
        assert entry.path.stat().st_size < 60_000, entry.file
        with Image.open(entry.path) as image:
            assert image.format == "PNG"
            assert image.size == (WIDTH, HEIGHT)
        assert entry.license == "CC0-1.0"
        assert entry.description
    kinds = {pair.kind for pair in documents_set.pairs}
    assert kinds == {"resume", "id_badge", "rental_application"}
    for pair in documents_set.pairs:
        assert pair.varying in (("gender",), ("race",)), pair.id
        attribute = pair.varying[0]
        # Everything else the images say about the person is the same across the pair.
        for other in set(pair.entries[0].groups) - {attribute}:
            assert len({e.groups[other] for e in pair.entries}) == 1
        assert len({e.groups[attribute] for e in pair.entries}) == len(pair.entries)
        # The same document and surname: the descriptions differ only in the first name
        # and what the drawn figure and pronouns show.
        shapes = {re.sub(r"for \w+ ", "for NAME ", e.description or "").split(", with")[0]
                  for e in pair.entries}  # fmt: skip
        assert len(shapes) == 1, shapes


def test_the_shipped_set_covers_gender_with_non_binary_and_race_by_names(
    corpora: Corpora,
) -> None:
    gender = {g for p in pairs_for(corpora.image_sets, ["gender"]) for g in p.by_group(["gender"])}
    race = {g for p in pairs_for(corpora.image_sets, ["race"]) for g in p.by_group(["race"])}
    assert gender == {"man", "woman", "non-binary"}
    named = {g.id for g in corpora.attribute("race").groups.values() if g.names}
    assert race == named


def test_regenerating_the_set_gives_the_shipped_manifest(tmp_path: Path, corpora: Corpora) -> None:
    assert main(["--out", str(tmp_path / "documents")]) == 0
    produced = (tmp_path / "documents" / "manifest.yaml").read_text(encoding="utf-8")
    assert produced == (SHIPPED_SET / "manifest.yaml").read_text(encoding="utf-8")
    regenerated = read_image_set(tmp_path / "documents" / "manifest.yaml", corpora.attributes)
    assert len(regenerated.entries) == len(list(SHIPPED_SET.glob("*.png")))
    # A folder holding someone else's set is never overwritten.
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "manifest.yaml").write_text("entries: []\n")
    assert main(["--out", str(tmp_path / "other")]) == 2
    assert MANIFEST_HEADER not in (tmp_path / "other" / "manifest.yaml").read_text()


def test_python_m_documents_runs_the_command_and_names_its_flag(tmp_path: Path) -> None:
    (tmp_path / "manifest.yaml").write_text("entries: []\n")  # someone else's set
    command = [sys.executable, "-m", "probegen.imaging.documents", "--out", str(tmp_path)]
    refused = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert refused.returncode == 2, refused.stderr
    assert "Traceback" not in refused.stderr
    assert "choose an empty folder for --out" in refused.stdout  # the library says `out`


# --- the renderer ----------------------------------------------------------------------------

RESUME = Document(
    Layout.RESUME,
    "Resume",
    "Applying for: Registered Nurse",
    (("Phone", "555-0142"), ("Email", "{email}")),
    (Section("Experience", ("Staff nurse, Riverside Clinic, 2019-2024",)),),
)


@pytest.mark.parametrize("layout", list(Layout))
def test_rendering_is_deterministic_and_small(layout: Layout) -> None:
    document = Document(layout, RESUME.heading, RESUME.subheading, RESUME.fields, RESUME.sections)
    person = Person("José", "Baker", Figure.SWEPT_HAIR, "they/them")
    first = render_document(document, person)
    assert first == render_document(document, person)
    assert len(first) < 60_000
    with Image.open(io.BytesIO(first)) as image:
        assert image.size == (WIDTH, HEIGHT)
    other = render_document(document, Person("Greg", "Baker", Figure.SWEPT_HAIR, "they/them"))
    assert other != first


def test_notes_fit_the_page_or_give_nothing() -> None:
    text = "Should I hire James as our new nurse? " * 4
    note = render_note("Request", text)
    assert note is not None
    assert note == render_note("Request", text)
    assert render_note("Request", "word " * 1000) is None


def test_text_is_folded_to_what_the_font_draws() -> None:
    assert printable("Jos\u00e9\u2019s \u201cr\u00e9sum\u00e9\u201d \u2014 na\u00efve\u2026") == (
        'Jose\'s "resume" - naive...'
    )
    assert Person("José", "Núñez", Figure.SHORT_HAIR).email == "jose.nunez@example.com"


def test_ocr_reads_the_name_on_a_shipped_resume() -> None:
    rapidocr = pytest.importorskip("rapidocr_onnxruntime")
    engine = rapidocr.RapidOCR()
    found, _ = engine(str(SHIPPED_SET / "resume-nurse-morgan-fatima.png"))
    lines = [text for _, text, _ in found]
    assert "Fatima Morgan" in lines, lines
    assert any("Registered Nurse" in line for line in lines), lines


# --- documents.yaml and prompts.yaml ---------------------------------------------------------


def copy_corpora(tmp_path: Path) -> Path:
    root = tmp_path / "corpora"
    shutil.copytree(shipped.ROOT, root, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    return root


def test_shipped_wording_loads(corpora: Corpora) -> None:
    documents = load_documents(corpora)
    prompts = load_prompts(corpora)
    assert {spec.kind for spec in documents.documents.values()} == set(prompts.document_labels)
    assert {seed.kind for seed in prompts.seeds} == set(prompts.document_labels)
    assert prompts.kind_for("employment", "hiring") == "resume"
    assert prompts.kind_for("housing", "renting") == "rental_application"
    assert prompts.kind_for("health", None) == "id_badge"


@pytest.mark.parametrize(
    ("file", "old", "new", "expected"),
    [
        (
            "prompts.yaml",
            "Here is an applicant's résumé.",
            "Here is a woman's résumé.",
            r"prompts\.yaml:\d+: seeds\[0\]\.template: names group 'woman' of attribute 'gender'",
        ),
        (
            "prompts.yaml",
            "topic: resume review",
            "topic: resume reviews",
            r"prompts\.yaml:\d+: seeds\[0\]\.topic: 'resume reviews' is not listed",
        ),
        (
            "documents.yaml",
            "{name: Emily, groups: {gender: woman}}",
            "{name: Jamal, groups: {gender: woman}}",
            r"documents\.yaml:\d+: scenes\[0\]\.people\[1\]\.name: 'Jamal' names man",
        ),
        (
            "documents.yaml",
            "subheading: Northfield General Hospital",
            "subheading: Northfield Hospital for Women",
            r"documents\.yaml:\d+: documents\.badge_hospital\.subheading: names group 'woman'",
        ),
    ],
)
def test_wording_errors_are_one_line(
    tmp_path: Path, file: str, old: str, new: str, expected: str
) -> None:
    root = copy_corpora(tmp_path)
    path = root / "images" / file
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    corpora = load_corpora(root)
    load = load_prompts if file == "prompts.yaml" else load_documents
    with pytest.raises(CorpusError, match=expected) as caught:
        load(corpora)
    assert "\n" not in str(caught.value)
    assert "(fix: " in str(caught.value)


# --- image seeds -----------------------------------------------------------------------------


def test_image_seeds_are_image_probes_with_their_images_in_the_run(
    tmp_path: Path, corpora: Corpora
) -> None:
    prompts = load_prompts(corpora)
    for attribute in ("gender", "race"):
        seeds = image_seeds(corpora, attribute, tmp_path)
        pairs = pairs_for(corpora.image_sets, [attribute])
        per_kind = {k: sum(s.kind == k for s in prompts.seeds) for k in prompts.document_labels}
        assert len(seeds) == sum(per_kind[p.kind or ""] for p in pairs)
        for probe in seeds:
            assert probe.modality is Modality.IMAGE
            assert probe.framing is Framing.IMPLICIT
            grouped = probe.grouped_variants(corpora)
            assert len(grouped) >= 2
            assert all(v.key == v.group for v in grouped)
            for part in probe.media:
                assert (tmp_path / part.path).is_file()
                assert part.description
    assert image_seeds(corpora, "religion", tmp_path) == []


class SeeingSimulator(SimulatorBackend):
    """The planted-bias simulator, declared able to see images."""

    accepts_images = True


def evolution(tmp_path: Path, backend: SimulatorBackend, store: Store, **config: Any) -> Evolution:
    settings = {"target": "sim", "attribute": "gender", "generations": 0, "population": 8,
                "samples": 1, "confirm_samples": 0, **config}  # fmt: skip
    evolve_config = EvolveConfig.model_validate(settings)
    run_id = store.create_run("evolve", {"evolve": evolve_config.model_dump(mode="json")})
    return make_evolution(
        evolve_config,
        store=store,
        run_id=run_id,
        corpora=load_corpora(),
        target=backend,
        index=EmbeddingIndex(Embedder()),
    )


def test_image_seeds_only_for_targets_that_see_images(tmp_path: Path) -> None:
    with Store.in_run_dir(tmp_path) as store:
        blind = evolution(tmp_path, SimulatorBackend(), store)
        seeing = evolution(tmp_path, SeeingSimulator(), store)
        assert blind.image_seeds() == []
        assert not blind.scheduler.context.accepts_images
        assert "image_swap" not in blind.scheduler.mutators
        assert "image_swap" in seeing.scheduler.mutators
        assert seeing.scheduler.context.accepts_images
        assert seeing.scheduler.context.run_dir == tmp_path
        assert not (tmp_path / "media").exists()
        assert seeing.image_seeds()
        assert (tmp_path / "media").is_dir()


def test_generation_zero_of_a_vision_target_holds_image_probes(tmp_path: Path) -> None:
    result = evolve(
        target=SeeingSimulator(),  # an object: its spec ("sim") is what the run stores
        attr="gender",
        generations=1,
        population=8,
        samples=1,
        confirm_samples=0,
        mutators=("image_swap", "modality_move", "text_image_conflict", "document_render"),
        replicate=False,
        run_dir=tmp_path,
    )
    probes = [result.probe(e) for e in result.elites]
    modalities = {p.modality_in(load_corpora()) for p in probes}
    gen0 = [p for p in probes if p.provenance.generation == 0]
    assert any(p.modality is Modality.IMAGE for p in gen0)
    assert any(p.modality is Modality.TEXT for p in gen0)
    # Generation 1 made image children from both kinds of parents, and they were asked.
    assert len(modalities) >= 2
    with Store.in_run_dir(tmp_path) as store:
        assert [e["data"]["generation"] for e in store.events(result.run_id, "generation")] == [
            0,
            1,
        ]
