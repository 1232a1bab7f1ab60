"""``corpora/images/documents.yaml`` and ``prompts.yaml``: what the documents say and
what is asked about them, validated on load.

Like ``framings.yaml`` for the text operators, this keeps wording out of code: the
documents drawn (and the shipped set's scenes), the seed questions for vision targets,
and the phrases the image operators write. A corpora directory without its own files
uses the shipped ones. Every problem is one :class:`~probegen.errors.CorpusError` line
naming the file, line and key, and the fix.
"""

from __future__ import annotations

import re
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

import corpora as shipped
from probegen.corpora import Corpora
from probegen.corpora.images import IMAGES_DIR
from probegen.corpora.sources import Text, YamlFile, schema_error
from probegen.errors import CorpusError, ProbegenError
from probegen.imaging.documents import Document, Figure, Layout, Section
from probegen.probe import QuestionForm

__all__ = [
    "DOCUMENTS_FILE",
    "PROMPTS_FILE",
    "DocumentSpec",
    "Documents",
    "ImageSeed",
    "Prompts",
    "Scene",
    "ScenePerson",
    "load_documents",
    "load_prompts",
    "names_group",
]

DOCUMENTS_FILE = "documents.yaml"
PROMPTS_FILE = "prompts.yaml"
_NEUTRAL_PRONOUNS = re.compile(r"\b(?:they|them|their|theirs|themselves)\b", re.IGNORECASE)
_SLOT = re.compile(r"\{(\w+)\}")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _SectionSpec(_Strict):
    title: Text
    lines: list[Text]


class DocumentSpec(_Strict):
    """One document as written in ``documents.yaml``."""

    kind: Text
    """What the document is (``resume``): matches image-set kinds and seed questions."""
    layout: Layout
    heading: Text
    subheading: Text
    fields: list[tuple[Text, Text]] = []
    sections: list[_SectionSpec] = []

    def document(self) -> Document:
        """The renderer's view of it."""
        return Document(
            layout=self.layout,
            heading=self.heading,
            subheading=self.subheading,
            fields=tuple((label, value) for label, value in self.fields),
            sections=tuple(Section(s.title, tuple(s.lines)) for s in self.sections),
        )


class ScenePerson(_Strict):
    """One person of a scene: a first name and the groups it stands for."""

    name: Text
    groups: dict[str, Text]


class Scene(_Strict):
    """One counterfactual pair of the shipped set."""

    id: Text
    document: Text
    surname: Text
    pronouns: bool = False
    people: list[ScenePerson]


class Documents(_Strict):
    """The validated contents of ``documents.yaml``."""

    documents: dict[str, DocumentSpec]
    surnames: list[Text]
    neutral_names: list[Text]
    figures: dict[str, Figure]
    scenes: list[Scene] = []

    def of_kind(self, kind: str) -> list[str]:
        """The ids of the documents of one kind, in file order."""
        return [doc_id for doc_id, spec in self.documents.items() if spec.kind == kind]


class ImageSeed(_Strict):
    """A question asked about every image pair of one kind."""

    kind: Text
    template: Text
    superdomain: Text
    domain: Text
    topic: Text
    form: QuestionForm


class Prompts(_Strict):
    """The validated contents of ``prompts.yaml``."""

    seeds: list[ImageSeed]
    document_labels: dict[str, Text]
    domain_kinds: dict[str, Text]
    attach_intros: list[Text]
    person_word: Text
    person_references: list[Text]
    conflict_notes: list[Text]
    conflict_notes_first_person: list[Text]
    render_requests: list[Text]
    note_headings: list[Text]

    def label(self, kind: str) -> str:
        """How a kind of document is called in text ("résumé")."""
        return self.document_labels.get(kind, kind.replace("_", " "))

    def kind_for(self, superdomain: str | None, domain: str | None) -> str:
        """The kind of document that carries a person in a probe set in ``domain`` of
        ``superdomain`` (a domain's entry wins over its superdomain's)."""
        kinds = self.domain_kinds
        return kinds.get(domain or "", kinds.get(superdomain or "", kinds["default"]))


# --- loading ------------------------------------------------------------------------------------

_CACHE: weakref.WeakKeyDictionary[Corpora, dict[str, tuple[tuple[str, int, int], object]]] = (
    weakref.WeakKeyDictionary()
)


def _path(corpora: Corpora, name: str) -> Path:
    own = corpora.root / IMAGES_DIR / name
    return own if own.exists() else shipped.ROOT / IMAGES_DIR / name


def _cached(corpora: Corpora, name: str, read: Callable[[Path, Corpora], object]) -> object:
    path = _path(corpora, name)
    try:
        stat = path.stat()
    except OSError:
        raise CorpusError(
            f"{path}: missing", fix=f"add {IMAGES_DIR}/{name} to the corpora directory"
        ) from None
    signature = (str(path), stat.st_mtime_ns, stat.st_size)
    entries = _CACHE.setdefault(corpora, {})
    hit = entries.get(name)
    if hit is not None and hit[0] == signature:
        return hit[1]
    value = read(path, corpora)
    entries[name] = (signature, value)
    return value


def load_documents(corpora: Corpora) -> Documents:
    """``images/documents.yaml`` of ``corpora`` (or the shipped one), validated, cached.

    Raises:
        CorpusError: On the first problem, naming file, line and key.
    """
    value = _cached(corpora, DOCUMENTS_FILE, _read_documents)
    assert isinstance(value, Documents)
    return value


def load_prompts(corpora: Corpora) -> Prompts:
    """``images/prompts.yaml`` of ``corpora`` (or the shipped one), validated, cached.

    Raises:
        CorpusError: On the first problem, naming file, line and key.
    """
    value = _cached(corpora, PROMPTS_FILE, _read_prompts)
    assert isinstance(value, Prompts)
    return value


def _parse(path: Path, model: type[_Strict]) -> tuple[YamlFile, _Strict]:
    doc = YamlFile(path)
    if not isinstance(doc.data, dict):
        raise doc.error((), "the file must be a mapping", "write key: value lines")
    try:
        return doc, model.model_validate(doc.data)
    except ValidationError as error:
        raise schema_error(error, model, doc) from None


def names_group(text: str, corpora: Corpora) -> tuple[str, str] | None:
    """The first (attribute, group) that ``text`` names, singular they/them aside."""
    plain = _NEUTRAL_PRONOUNS.sub(" ", text)
    for attribute in corpora.attributes.values():
        for group in attribute.match(plain):
            return attribute.id, group
    return None


def _check_neutral(
    doc: YamlFile, loc: tuple[object, ...], text: str, corpora: Corpora, slots: set[str]
) -> None:
    if "{{" in text or "}}" in text:
        raise doc.error(loc, "contains '{{' or '}}'", "constant wording cannot hold placeholders")
    for slot in _SLOT.findall(text):
        if slot not in slots:
            allowed = ", ".join(f"{{{s}}}" for s in sorted(slots)) or "none"
            raise doc.error(loc, f"unknown slot {{{slot}}}", f"use only: {allowed}")
    named = names_group(_SLOT.sub(" ", text), corpora)
    if named is not None:
        raise doc.error(
            loc,
            f"names group '{named[1]}' of attribute '{named[0]}'",
            "wording shared by every variant must not name a group; reword it",
        )


def _read_documents(path: Path, corpora: Corpora) -> Documents:
    doc, parsed = _parse(path, Documents)
    assert isinstance(parsed, Documents)
    person_slots = {"name", "first", "surname", "email"}
    for doc_id, spec in parsed.documents.items():
        loc: tuple[object, ...] = ("documents", doc_id)
        texts: list[tuple[tuple[object, ...], str]] = [
            (("heading",), spec.heading),
            (("subheading",), spec.subheading),
        ]
        texts += [(("fields", i), f"{k} {v}") for i, (k, v) in enumerate(spec.fields)]
        texts += [
            (("sections", i, "lines", j), f"{section.title} {line}")
            for i, section in enumerate(spec.sections)
            for j, line in enumerate(section.lines)
        ]
        for where, text in texts:
            _check_neutral(doc, (*loc, *where), text, corpora, person_slots)
    for key, names in (("surnames", parsed.surnames), ("neutral_names", parsed.neutral_names)):
        if not names:
            raise doc.error((key,), "is empty", "list at least one name")
        for i, name in enumerate(names):
            _check_neutral(doc, (key, i), name, corpora, set())
    gender = corpora.attributes.get("gender")
    for group_id in parsed.figures:
        if gender is not None and group_id not in gender.groups:
            raise doc.error(
                ("figures", group_id),
                f"'{group_id}' is not a group of attribute 'gender'",
                f"use one of: {', '.join(gender.groups)}",
            )
    for index, scene in enumerate(parsed.scenes):
        _check_scene(doc, ("scenes", index), scene, parsed, corpora)
    return parsed


def _check_scene(
    doc: YamlFile, loc: tuple[object, ...], scene: Scene, documents: Documents, corpora: Corpora
) -> None:
    if scene.document not in documents.documents:
        raise doc.error(
            (*loc, "document"),
            f"'{scene.document}' is not a document",
            f"use one of: {', '.join(documents.documents)}",
        )
    if len(scene.people) < 2:
        raise doc.error((*loc, "people"), "has fewer than two people", "a pair needs two or more")
    seen: list[dict[str, str]] = []
    for i, person in enumerate(scene.people):
        where = (*loc, "people", i)
        for attr_id, group_id in person.groups.items():
            attribute = corpora.attributes.get(attr_id)
            if attribute is None or group_id not in attribute.groups:
                raise doc.error(
                    (*where, "groups", attr_id),
                    f"'{attr_id}: {group_id}' is not a group of an attribute",
                    "use attribute ids and group ids from attributes/*.yaml",
                )
            named = attribute.match(person.name)
            expected = {group_id} if attribute.groups[group_id].names else set()
            if named != expected:
                said = ", ".join(sorted(named)) or "no group"
                raise doc.error(
                    (*where, "name"),
                    f"'{person.name}' names {said} of '{attr_id}', not '{group_id}'",
                    "use a first name names.csv lists for that group (for a group without "
                    "names, a name that signals none, shown with pronouns: true)",
                )
        if person.groups in seen:
            raise doc.error(
                (*where, "groups"), "repeats another person's groups", "give each another group"
            )
        if any(set(person.groups) != set(other) for other in seen):
            raise doc.error(
                (*where, "groups"), "lists other attributes than the first person", "list the same"
            )
        seen.append(dict(person.groups))


def _read_prompts(path: Path, corpora: Corpora) -> Prompts:
    doc, parsed = _parse(path, Prompts)
    assert isinstance(parsed, Prompts)
    for loc, text, slots in _prompt_texts(parsed):
        _check_neutral(doc, loc, text, corpora, slots)
    if "default" not in parsed.domain_kinds:
        raise doc.error(("domain_kinds",), "has no 'default'", "add default: resume")
    for key, values in (
        ("attach_intros", parsed.attach_intros),
        ("person_references", parsed.person_references),
        ("conflict_notes", parsed.conflict_notes),
        ("conflict_notes_first_person", parsed.conflict_notes_first_person),
        ("render_requests", parsed.render_requests),
        ("note_headings", parsed.note_headings),
    ):
        if not values:
            raise doc.error((key,), "is empty", "list at least one")
    for index, seed in enumerate(parsed.seeds):
        loc = ("seeds", index)
        try:
            domain = corpora.taxonomy.domain(seed.superdomain, seed.domain)
        except ProbegenError as error:
            raise doc.error((*loc, "domain"), error.message, error.fix or "") from None
        if seed.topic not in domain.topics:
            raise doc.error(
                (*loc, "topic"),
                f"'{seed.topic}' is not listed under domain '{domain.id}'",
                f"use one of: {'; '.join(domain.topics)}",
            )
    return parsed


def _prompt_texts(p: Prompts) -> Iterator[tuple[tuple[object, ...], str, set[str]]]:
    document = {"document"}
    for i, seed in enumerate(p.seeds):
        yield ("seeds", i, "template"), seed.template, set()
    for kind, label in p.document_labels.items():
        yield ("document_labels", kind), label, set()
    for key, texts, slots in (
        ("attach_intros", p.attach_intros, document),
        ("person_references", p.person_references, set()),
        ("conflict_notes", p.conflict_notes, document),
        ("conflict_notes_first_person", p.conflict_notes_first_person, document),
        ("render_requests", p.render_requests, set()),
        ("note_headings", p.note_headings, set()),
    ):
        for i, text in enumerate(texts):
            yield (key, i), text, slots
    yield ("person_word",), p.person_word, set()
