"""``framings.yaml``: the wording the operators put into templates, validated on load.

Operators never hard-code phrasing: group words, persona phrasings, decision questions,
psychometric and refusal framings, and topic scenarios all live in ``framings.yaml`` in
the corpora directory (the shipped one when a custom corpora directory has none).

Checks made on load, each failing as one :class:`~probegen.errors.CorpusError` line that
names the file, line and key:

- the schema (unknown or missing keys, wrong types);
- slots: each text uses exactly the ``{slots}`` its kind allows, and ``{they}`` only
  after an auxiliary ("should {they}"), so a singular "they" never needs another verb form;
- group words (``adjectives``, ``predicates``, ``nouns``) name exactly their group;
- every constant text names no group of any attribute: wording that is the same in every
  variant must not itself carry (or assert anything about) a group;
- scenario and decision keys are domains of the taxonomy, scenario topics are listed there;
  so are the domains and topics of the compose situations, whose entity lists exist.
"""

from __future__ import annotations

import re
import weakref
from collections.abc import Iterator
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

import corpora as shipped
from probegen.corpora import Corpora, Domain
from probegen.corpora.sources import Text, YamlFile, schema_error
from probegen.errors import CorpusError
from probegen.probe import QuestionForm

from ._text import MODALS

__all__ = [
    "FRAMINGS_FILE",
    "Closings",
    "Compose",
    "DecisionSet",
    "Decisions",
    "Framings",
    "Scenario",
    "Situation",
    "Wrapper",
    "load_framings",
    "names_group",
]

FRAMINGS_FILE = "framings.yaml"
PRONOUN_SLOTS = frozenset({"they", "them", "their"})
_SLOT = re.compile(r"\{(\w+)\}")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Wrapper(_Strict):
    """A framing put around a whole question (``{question}``)."""

    text: Text
    form: QuestionForm | None = None
    """The question form the framed question has, when the framing changes it."""


class Scenario(_Strict):
    """A situation in one domain, to move a probe's persona into (topic_shift)."""

    topic: Text
    form: QuestionForm
    relation: Text
    """Who the person is to the asker in the third-person version ("coworker")."""
    third: Text
    """Third person: ``{person}`` once, pronoun slots ``{they}``/``{them}``/``{their}``."""
    first: Text
    """First person: ``{i_am}`` once ("I'm a woman", "I'm Emily")."""


class DecisionSet(_Strict):
    """Decision questions and where they fit."""

    where: list[Text]
    """Topics or domain ids the questions fit."""
    questions: list[Text]


class Decisions(_Strict):
    """Closing questions that turn a probe into a decision (the decision operator)."""

    yes_no: list[DecisionSet]
    """Yes/no questions about the person (pronoun slots)."""
    two_candidates: list[DecisionSet]
    """A choice between the person (``{who}``) and one fixed other candidate."""
    first_person: list[Text]
    """Yes/no questions about the asker's own plan."""
    first_person_cues: list[Text]
    """Phrases that show the asker has a plan to decide on ("I want to")."""


class Situation(_Strict):
    """A situation the compose operator fills with an entity or a topic, about a persona."""

    domain: Text | None = None
    """Where it is set; None for a situation about any taxonomy topic (``{topic}``)."""
    topic: Text | None = None
    form: QuestionForm = QuestionForm.ADVICE
    """The child's form when it ends in an open request."""
    relation: Text
    """Who the person is to the asker in the third-person version ("coworker")."""
    entities: Text | None = None
    """The entity list whose items fill ``{entity}``; None when it has no entity."""
    plan: bool = False
    """Whether it describes the person's plan, so ``compose.yes_no`` closings fit."""
    third: Text
    """Third person: ``{person}`` once, pronoun slots, and its ``{entity}``/``{topic}``."""
    first: Text
    """First person: ``{i_am}`` once, and its ``{entity}``/``{topic}``."""

    @property
    def fillers(self) -> frozenset[str]:
        """The slots it needs filled besides the persona: ``entity``, ``topic``."""
        return frozenset(
            slot
            for slot, needed in (("entity", self.entities), ("topic", self.domain is None))
            if needed
        )


class Closings(_Strict):
    """Closing requests in the third person (pronoun slots) and in the first."""

    third: list[Text] = Field(default_factory=list)
    first: list[Text] = Field(default_factory=list)


class Compose(_Strict):
    """The parts the compose operator puts together (absent: it proposes nothing)."""

    entities: dict[str, list[Text]] = Field(default_factory=dict)
    """Named things situations can be about, by list name."""
    situations: list[Situation] = Field(default_factory=list)
    requests: Closings = Field(default_factory=Closings)
    """Open closings."""
    yes_no: list[Text] = Field(default_factory=list)
    """Yes/no closings about a plan, third person (pronoun slots)."""


class Framings(_Strict):
    """The validated contents of ``framings.yaml``."""

    allowed_words: list[Text]
    """Words exempt from the group-neutrality check ("they" is usually plural)."""
    adjectives: dict[str, dict[str, Text]]
    predicates: dict[str, dict[str, Text]]
    nouns: dict[str, dict[str, Text]]
    neutral_nouns: dict[str, Text]
    non_person_nouns: list[Text]
    collective_nouns: list[Text]
    request_starts: list[Text]
    name_intros: list[Text]
    name_signoffs: list[Text]
    fallback_nouns: dict[str, Text]
    relations: list[Text]
    specific_details: list[Text]
    psychometric: dict[str, list[Wrapper]]
    refusal_triggers: dict[str, list[Wrapper]]
    decisions: Decisions
    scenarios: dict[str, list[Scenario]]
    compose: Compose = Field(default_factory=Compose)


def framings_path(corpora: Corpora) -> Path:
    """``framings.yaml`` of ``corpora``, or the shipped one when it has none."""
    own = corpora.root / FRAMINGS_FILE
    return own if own.exists() else shipped.ROOT / FRAMINGS_FILE


_CACHE: weakref.WeakKeyDictionary[Corpora, tuple[tuple[str, int, int], Framings]] = (
    weakref.WeakKeyDictionary()
)


def load_framings(corpora: Corpora) -> Framings:
    """The framings for ``corpora``, validated against it (cached until the file changes).

    Raises:
        CorpusError: On the first problem, naming file, line and key.
    """
    path = framings_path(corpora)
    try:
        stat = path.stat()
    except OSError:
        raise CorpusError(
            f"{path}: missing", fix=f"add {FRAMINGS_FILE} to the corpora directory"
        ) from None
    signature = (str(path), stat.st_mtime_ns, stat.st_size)
    cached = _CACHE.get(corpora)
    if cached is not None and cached[0] == signature:
        return cached[1]
    framings = _read(path, corpora)
    _CACHE[corpora] = (signature, framings)
    return framings


def _read(path: Path, corpora: Corpora) -> Framings:
    doc = YamlFile(path)
    if not isinstance(doc.data, dict):
        raise doc.error((), "the file must be a mapping", "start the file with 'adjectives:'")
    try:
        framings = Framings.model_validate(doc.data)
    except ValidationError as error:
        raise schema_error(error, Framings, doc) from None
    _check_group_words(doc, framings, corpora)
    exempt = "|".join(re.escape(w) for w in framings.allowed_words) or "(?!x)x"
    allowed = re.compile(rf"\b(?:{exempt})\b", re.IGNORECASE)
    for loc, text, required, optional in _texts(framings):
        _check_text(doc, loc, text, required, optional, corpora, allowed)
    _check_taxonomy(doc, framings, corpora)
    return framings


def _texts(
    f: Framings,
) -> Iterator[tuple[tuple[object, ...], str, frozenset[str], frozenset[str]]]:
    """Every constant text with its location, required slots and optional slots."""
    none: frozenset[str] = frozenset()
    for key, values in (("neutral_nouns", f.neutral_nouns), ("fallback_nouns", f.fallback_nouns)):
        for name, value in values.items():
            yield (key, name), value, none, none
    for key, items in (
        ("request_starts", f.request_starts),
        ("non_person_nouns", f.non_person_nouns),
        ("collective_nouns", f.collective_nouns),
        ("relations", f.relations),
        ("specific_details", f.specific_details),
    ):
        for i, text in enumerate(items):
            yield (key, i), text, none, none
    for key, items in (("name_intros", f.name_intros), ("name_signoffs", f.name_signoffs)):
        for i, text in enumerate(items):
            yield (key, i), text, frozenset({"name"}), none
    for key, kinds in (("psychometric", f.psychometric), ("refusal_triggers", f.refusal_triggers)):
        for kind, wrappers in kinds.items():
            for i, wrapper in enumerate(wrappers):
                yield (key, kind, i, "text"), wrapper.text, frozenset({"question"}), none
    d = f.decisions
    for key, sets, required in (
        ("yes_no", d.yes_no, none),
        ("two_candidates", d.two_candidates, frozenset({"who"})),
    ):
        for i, entry in enumerate(sets):
            for j, text in enumerate(entry.questions):
                yield ("decisions", key, i, "questions", j), text, required, PRONOUN_SLOTS
    for key, items in (
        ("first_person", d.first_person),
        ("first_person_cues", d.first_person_cues),
    ):
        for i, text in enumerate(items):
            yield ("decisions", key, i), text, none, none
    for domain, scenarios in f.scenarios.items():
        for i, scenario in enumerate(scenarios):
            loc = ("scenarios", domain, i)
            yield (*loc, "third"), scenario.third, frozenset({"person"}), PRONOUN_SLOTS
            yield (*loc, "first"), scenario.first, frozenset({"i_am"}), none
            yield (*loc, "relation"), scenario.relation, none, none
    c = f.compose
    for key, entities in c.entities.items():
        for i, text in enumerate(entities):
            yield ("compose", "entities", key, i), text, none, none
    for i, situation in enumerate(c.situations):
        loc = ("compose", "situations", i)
        fillers = situation.fillers
        yield (*loc, "third"), situation.third, fillers | {"person"}, PRONOUN_SLOTS
        yield (*loc, "first"), situation.first, fillers | {"i_am"}, none
        yield (*loc, "relation"), situation.relation, none, none
    for key, texts, optional in (
        ("third", c.requests.third, PRONOUN_SLOTS),
        ("first", c.requests.first, none),
    ):
        for i, text in enumerate(texts):
            yield ("compose", "requests", key, i), text, none, optional
    for i, text in enumerate(c.yes_no):
        yield ("compose", "yes_no", i), text, none, PRONOUN_SLOTS


def _check_text(
    doc: YamlFile,
    loc: tuple[object, ...],
    text: str,
    required: frozenset[str],
    optional: frozenset[str],
    corpora: Corpora,
    allowed: re.Pattern[str],
) -> None:
    if "{{" in text or "}}" in text:
        raise doc.error(loc, "contains '{{' or '}}'", "constant wording cannot hold placeholders")
    used = _SLOT.findall(text)
    for slot in used:
        if slot not in required | optional:
            listed = ", ".join(f"{{{s}}}" for s in sorted(required | optional)) or "none"
            raise doc.error(loc, f"unknown slot {{{slot}}}", f"use only: {listed}")
    for slot in sorted(required):
        if used.count(slot) != 1:
            raise doc.error(loc, f"must use {{{slot}}} exactly once", f"write {{{slot}}} once")
    for match in re.finditer(r"(\w+)\s+\{they\}", text):
        if match.group(1).lower() not in MODALS:
            raise doc.error(
                loc,
                f"{{they}} follows '{match.group(1)}'",
                "put {they} only after an auxiliary (should, can, would, did, ...), so a "
                "singular 'they' needs no other verb form",
            )
    if re.search(r"(^|[.?!]\s+)\{they\}", text):
        raise doc.error(loc, "starts a sentence with {they}", "put {they} after an auxiliary")
    named = names_group(allowed.sub(" ", _SLOT.sub(" ", text)), corpora)
    if named is not None:
        attribute, group = named
        raise doc.error(
            loc,
            f"names group '{group}' of attribute '{attribute}'",
            "wording shared by every variant must not name a group; reword it",
        )


def names_group(text: str, corpora: Corpora) -> tuple[str, str] | None:
    """The first ``(attribute, group)`` that ``text`` names, or None."""
    for attribute in corpora.attributes.values():
        for group in attribute.match_kinds(text):
            return attribute.id, group
    return None


def _check_group_words(doc: YamlFile, f: Framings, corpora: Corpora) -> None:
    for key, table in (
        ("adjectives", f.adjectives),
        ("predicates", f.predicates),
        ("nouns", f.nouns),
    ):
        for attr_id, groups in table.items():
            attribute = corpora.attributes.get(attr_id)
            if attribute is None:
                raise doc.error(
                    (key, attr_id),
                    f"'{attr_id}' is not an attribute",
                    f"use one of: {', '.join(corpora.attributes)}",
                )
            for group_id, word in groups.items():
                if group_id not in attribute.groups:
                    raise doc.error(
                        (key, attr_id, group_id),
                        f"'{group_id}' is not a group of '{attr_id}'",
                        f"use one of: {', '.join(attribute.groups)}",
                    )
                if set(attribute.match(word)) != {group_id}:
                    raise doc.error(
                        (key, attr_id, group_id),
                        f"'{word}' does not name group '{group_id}' alone",
                        "use a surface form of the group (see `probegen corpora show`)",
                    )


def _check_taxonomy(doc: YamlFile, f: Framings, corpora: Corpora) -> None:
    domains = {domain.id: domain for _, domain in corpora.taxonomy.domains()}
    superdomains = set(corpora.taxonomy.superdomains)
    for key in f.fallback_nouns:
        if key != "default" and key not in superdomains:
            raise doc.error(
                ("fallback_nouns", key),
                f"'{key}' is not a superdomain",
                "use 'default' or a superdomain id from taxonomy.yaml",
            )
    if "default" not in f.fallback_nouns:
        raise doc.error(("fallback_nouns",), "has no 'default'", "add default: friend")
    topics = {topic for _, _, topic in corpora.taxonomy.topics()}
    for section, sets in (
        ("yes_no", f.decisions.yes_no),
        ("two_candidates", f.decisions.two_candidates),
    ):
        for i, entry in enumerate(sets):
            for j, key in enumerate(entry.where):
                if key not in domains and key not in topics:
                    raise doc.error(
                        ("decisions", section, i, "where", j),
                        f"'{key}' is neither a domain id nor a topic",
                        "use a domain id or a topic from taxonomy.yaml",
                    )
    _check_compose(doc, f.compose, domains)
    for key, scenarios in f.scenarios.items():
        if key not in domains:
            raise doc.error(
                ("scenarios", key), f"'{key}' is not a domain", "use a domain id from taxonomy.yaml"
            )
        for i, scenario in enumerate(scenarios):
            if scenario.topic not in domains[key].topics:
                raise doc.error(
                    ("scenarios", key, i, "topic"),
                    f"topic '{scenario.topic}' is not listed under domain '{key}'",
                    f"use one of: {'; '.join(domains[key].topics)}",
                )


def _check_compose(doc: YamlFile, c: Compose, domains: dict[str, Domain]) -> None:
    for i, situation in enumerate(c.situations):
        loc = ("compose", "situations", i)
        if situation.entities is not None and situation.entities not in c.entities:
            raise doc.error(
                (*loc, "entities"),
                f"'{situation.entities}' is not an entity list",
                f"use one of: {', '.join(c.entities) or '(add compose.entities)'}",
            )
        if situation.domain is None:
            if situation.topic is not None:
                raise doc.error(
                    (*loc, "topic"), "is set without a domain", "add the topic's domain"
                )
            continue
        domain = domains.get(situation.domain)
        if domain is None:
            raise doc.error(
                (*loc, "domain"),
                f"'{situation.domain}' is not a domain",
                "use a domain id from taxonomy.yaml, or none for any topic",
            )
        if situation.topic not in domain.topics:
            raise doc.error(
                (*loc, "topic"),
                f"topic '{situation.topic}' is not listed under domain '{domain.id}'",
                f"use one of: {'; '.join(domain.topics)}",
            )
