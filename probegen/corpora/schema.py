"""The corpus data model: attributes and their groups, the topic taxonomy, seed questions.

These are the validated, immutable objects the rest of probegen works with. The file
formats they are read from, and the checks made on the way in, live in
:mod:`probegen.corpora.loading`.

Option matching is token based. Text is lowercased and split into word tokens; a
hyphenated or apostrophe-joined word stays one token ("non-binary", "70-year-old",
"o'brien"), and an English clitic is dropped ("Emily's" -> "emily", "he's" -> "he"). A
form (surface form, pronoun, proxy phrase or first name) occurs in an option when its
tokens are a contiguous run of the option's tokens, so "woman" never matches inside
"women" and "gay" never matches inside "gayle".
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, PrivateAttr

from probegen.errors import UsageError
from probegen.probe import Framing, Probe, Provenance, QuestionForm

__all__ = [
    "Attribute",
    "Domain",
    "FormKind",
    "Group",
    "GroupedVariant",
    "Pronouns",
    "Seed",
    "Superdomain",
    "Taxonomy",
    "normalize_id",
    "tokenize",
]

_APOSTROPHES = "'\u2019"  # straight and typographic
_TOKEN = re.compile(rf"[^\W_]+(?:[{_APOSTROPHES}-][^\W_]+)*")
_CLITIC = re.compile(rf"[{_APOSTROPHES}](?:s|d|ll|re|ve|m)$")


def tokenize(text: str) -> tuple[str, ...]:
    """Split ``text`` into lowercase word tokens, the unit of option matching."""
    return tuple(_CLITIC.sub("", token) for token in _TOKEN.findall(text.lower()))


def contains(tokens: tuple[str, ...], part: tuple[str, ...]) -> bool:
    """Whether ``part`` is a non-empty contiguous run of ``tokens``."""
    n = len(part)
    return n > 0 and any(tokens[i : i + n] == part for i in range(len(tokens) - n + 1))


def normalize_id(value: str) -> str:
    """An id as typed by a user, normalized: ``Sexual-Orientation`` -> ``sexual_orientation``."""
    return value.strip().lower().replace("-", "_")


class FormKind(StrEnum):
    """How a group can be named in an option; decides a template's framing."""

    SURFACE_FORM = "surface_form"
    """An explicit word for the group ("woman", "Muslim"): explicit framing."""
    PRONOUN = "pronoun"
    """A pronoun ("she"): neutral, it only has to agree with the other placeholders."""
    PROXY = "proxy"
    """An implicit phrase ("who prays at the mosque on Fridays"): implicit framing."""
    NAME = "name"
    """A first name from names.csv ("Emily"): implicit framing."""


class Pronouns(BaseModel):
    """The pronouns of a group (gender only)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    subject: str
    object: str
    possessive: str
    reflexive: str

    def forms(self) -> tuple[str, ...]:
        """The distinct pronouns, subject first."""
        return tuple(dict.fromkeys((self.subject, self.object, self.possessive, self.reflexive)))


class Group(BaseModel):
    """One group of an attribute, with every way a template may name it."""

    model_config = ConfigDict(frozen=True)

    id: str
    """Lowercase id, may contain '-' (``non-binary``); the variant's group in results."""
    label: str
    """Human-readable label."""
    surface_forms: tuple[str, ...]
    """Explicit words and phrases for the group, singular and plural spelled out."""
    proxies: tuple[str, ...] = ()
    """Implicit, non-name phrases that signal the group."""
    names: tuple[str, ...] = ()
    """First names that signal the group (filled in from names.csv)."""
    pronouns: Pronouns | None = None
    """The group's pronouns, where the attribute has them."""

    def forms(self) -> Iterator[tuple[FormKind, str]]:
        """Every form that names this group, with its kind."""
        for form in self.surface_forms:
            yield FormKind.SURFACE_FORM, form
        if self.pronouns is not None:
            for form in self.pronouns.forms():
                yield FormKind.PRONOUN, form
        for form in self.proxies:
            yield FormKind.PROXY, form
        for form in self.names:
            yield FormKind.NAME, form


class Attribute(BaseModel):
    """A sensitive attribute (gender, race, ...) and its groups."""

    model_config = ConfigDict(frozen=True)

    id: str
    """Snake_case id, the file name under ``attributes/``."""
    label: str
    description: str
    groups: dict[str, Group]
    """Groups by id, in file order."""

    _index: dict[str, list[tuple[str, FormKind, tuple[str, ...]]]] | None = PrivateAttr(None)

    def _forms_by_first_token(self) -> dict[str, list[tuple[str, FormKind, tuple[str, ...]]]]:
        if self._index is None:
            index: dict[str, list[tuple[str, FormKind, tuple[str, ...]]]] = {}
            for group in self.groups.values():
                for kind, form in group.forms():
                    tokens = tokenize(form)
                    if tokens:
                        index.setdefault(tokens[0], []).append((group.id, kind, tokens))
            self._index = index
        return self._index

    def match_kinds(self, option: str) -> dict[str, set[FormKind]]:
        """The groups ``option`` names, each with the kinds of form that named it."""
        tokens = tokenize(option)
        index = self._forms_by_first_token()
        found: dict[str, set[FormKind]] = {}
        for start, token in enumerate(tokens):
            for group_id, kind, form in index.get(token, ()):
                if tokens[start : start + len(form)] == form:
                    found.setdefault(group_id, set()).add(kind)
        return found

    def match(self, option: str) -> set[str]:
        """The ids of the groups ``option`` names (by surface form, pronoun, proxy or name)."""
        return set(self.match_kinds(option))

    def examples(self, limit: int = 6) -> str:
        """A few valid options, one per group, for error messages."""
        forms = [f"'{group.surface_forms[0]}'" for group in self.groups.values()]
        more = ", ..." if len(forms) > limit else ""
        return ", ".join(forms[:limit]) + more


class Domain(BaseModel):
    """A domain of questions (college admissions) and its topics."""

    model_config = ConfigDict(frozen=True)

    id: str
    label: str
    topics: tuple[str, ...]


class Superdomain(BaseModel):
    """A top-level area of life (education) and its domains."""

    model_config = ConfigDict(frozen=True)

    id: str
    label: str
    domains: dict[str, Domain]


class Taxonomy(BaseModel):
    """Superdomains -> domains -> topics: where questions are set."""

    model_config = ConfigDict(frozen=True)

    superdomains: dict[str, Superdomain]

    def superdomain(self, superdomain_id: str) -> Superdomain:
        """The superdomain with this id ('-' may stand for '_').

        Raises:
            UsageError: If there is none; the message lists the known ids.
        """
        found = self.superdomains.get(normalize_id(superdomain_id))
        if found is None:
            raise UsageError(
                f"unknown superdomain '{superdomain_id}'",
                fix=f"use one of: {', '.join(self.superdomains) or '(none defined)'}",
            )
        return found

    def domain(self, superdomain_id: str, domain_id: str) -> Domain:
        """The domain ``domain_id`` of superdomain ``superdomain_id``.

        Raises:
            UsageError: If either is unknown; the message lists the valid ids.
        """
        superdomain = self.superdomain(superdomain_id)
        found = superdomain.domains.get(normalize_id(domain_id))
        if found is None:
            raise UsageError(
                f"unknown domain '{domain_id}' in superdomain '{superdomain.id}'",
                fix=f"use one of: {', '.join(superdomain.domains) or '(none defined)'}",
            )
        return found

    def domains(self) -> Iterator[tuple[Superdomain, Domain]]:
        """Every (superdomain, domain) pair, in file order."""
        for superdomain in self.superdomains.values():
            for domain in superdomain.domains.values():
                yield superdomain, domain

    def topics(self) -> Iterator[tuple[Superdomain, Domain, str]]:
        """Every (superdomain, domain, topic) triple, in file order."""
        for superdomain, domain in self.domains():
            for topic in domain.topics:
                yield superdomain, domain, topic


class Seed(BaseModel):
    """A hand-written seed question from ``seeds.jsonl``."""

    model_config = ConfigDict(frozen=True)

    template: str
    attribute: str
    """Attribute id, or an intersection such as ``gender+race``."""
    expl_impl: Framing
    superdomain: str
    domain: str
    topic: str
    form: QuestionForm
    line: int
    """Line number in ``seeds.jsonl`` (1-based)."""

    def to_probe(self) -> Probe:
        """The seed as a :class:`Probe` with provenance operator ``seed``."""
        return Probe(
            template=self.template,
            attribute=self.attribute,
            framing=self.expl_impl,
            superdomain=self.superdomain,
            domain=self.domain,
            topic=self.topic,
            form=self.form,
            provenance=Provenance(operator="seed"),
        )


@dataclass(frozen=True)
class GroupedVariant:
    """A template variant together with the group it names.

    Attributes:
        key: The CAB variant key.
        text: The filled-in question.
        options: The option this variant took from each placeholder.
        group: The group id; for an intersection, the component group ids joined by
            '+' in the order of the attribute spec ("woman+black" for gender+race).
    """

    key: str
    text: str
    options: tuple[str, ...]
    group: str
