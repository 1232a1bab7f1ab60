"""``attributes/<id>.yaml``: one sensitive attribute and its groups per file."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from probegen.corpora.schema import Attribute, Group, Pronouns, contains, tokenize
from probegen.corpora.sources import (
    FORBIDDEN_IN_FORMS,
    GROUP_ID,
    SNAKE_ID,
    Text,
    YamlFile,
    schema_error,
)

__all__ = ["AttributeFile", "build_attribute", "group_forms", "read_attribute"]


class _PronounsFile(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    subject: Text
    object: Text
    possessive: Text
    reflexive: Text


class _GroupFile(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    label: Text
    surface_forms: list[Text]
    proxies: list[Text] = []
    pronouns: _PronounsFile | None = None


class AttributeFile(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    id: Text
    label: Text
    description: Text
    groups: dict[str, _GroupFile]


def read_attribute(path: Path) -> tuple[YamlFile, AttributeFile]:
    doc = YamlFile(path)
    if not isinstance(doc.data, dict):
        raise doc.error(
            (),
            "the file must be a mapping with id, label, description, groups",
            "start the file with 'id: <attribute id>'",
        )
    try:
        spec = AttributeFile.model_validate(doc.data)
    except ValidationError as error:
        raise schema_error(error, AttributeFile, doc) from None
    if spec.id != path.stem:
        raise doc.error(
            ("id",),
            f"'{spec.id}' does not match the file name '{path.name}'",
            f"rename the file to '{spec.id}.yaml' or set id: {path.stem}",
        )
    if not SNAKE_ID.match(spec.id):
        raise doc.error(
            ("id",),
            f"'{spec.id}' is not a snake_case id",
            "use lowercase letters, digits and '_', e.g. sexual_orientation",
        )
    if len(spec.groups) < 2:
        raise doc.error(
            ("groups",),
            "an attribute needs at least two groups",
            "add the groups a counterfactual question should compare",
        )
    for group_id, group in spec.groups.items():
        if not GROUP_ID.match(group_id):
            raise doc.error(
                ("groups", group_id),
                f"group id '{group_id}' is not valid",
                "use lowercase letters, digits and '-', e.g. non-binary",
            )
        if not group.surface_forms:
            raise doc.error(
                ("groups", group_id, "surface_forms"),
                "is empty",
                "list at least one explicit word for the group",
            )
    _check_forms(doc, spec)
    _check_proxy_balance(doc, spec)
    return doc, spec


def group_forms(spec: AttributeFile) -> list[tuple[str, str, tuple[object, ...], str]]:
    """(group id, kind, key path, form) for every form in the file."""
    forms: list[tuple[str, str, tuple[object, ...], str]] = []
    for group_id, group in spec.groups.items():
        for field in ("surface_forms", "proxies"):
            for index, form in enumerate(getattr(group, field)):
                forms.append((group_id, field[:-1], ("groups", group_id, field, index), form))
        if group.pronouns is not None:
            for role, form in group.pronouns.model_dump().items():
                forms.append((group_id, "pronoun", ("groups", group_id, "pronouns", role), form))
    return forms


def _check_forms(doc: YamlFile, spec: AttributeFile) -> None:
    forms = group_forms(spec)
    seen: dict[tuple[str, tuple[str, ...]], str] = {}
    for group_id, kind, loc, form in forms:
        if any(char in form for char in FORBIDDEN_IN_FORMS) or not tokenize(form):
            raise doc.error(
                loc,
                f"'{form}' cannot be used in a placeholder option",
                "use words only, without '/', '{' or '}'",
            )
        tokens = tokenize(form)
        if kind != "pronoun" and (group_id, tokens) in seen:
            raise doc.error(
                loc, f"'{form}' is listed twice in group '{group_id}'", "remove the duplicate"
            )
        seen[(group_id, tokens)] = form
    tokenized = [(group_id, kind, loc, form, tokenize(form)) for group_id, kind, loc, form in forms]
    # Report the later of two equal forms, and the longer of two nested ones.
    for i, (group_id, _, loc, form, tokens) in enumerate(tokenized):
        for j, (other_id, other_kind, _, other, other_tokens) in enumerate(tokenized):
            if other_id == group_id or not contains(tokens, other_tokens):
                continue
            if other_tokens == tokens:
                if j > i:
                    continue
                problem = f"'{form}' is also a {other_kind.replace('_', ' ')} of group '{other_id}'"
            else:
                problem = (
                    f"'{form}' contains '{other}', a {other_kind.replace('_', ' ')} of "
                    f"group '{other_id}', so an option using it would name two groups"
                )
            raise doc.error(loc, problem, "a form may name one group only: remove or reword it")


def _check_proxy_balance(doc: YamlFile, spec: AttributeFile) -> None:
    counts = {group_id: len(group.proxies) for group_id, group in spec.groups.items()}
    if any(counts.values()) and len(set(counts.values())) > 1:
        listing = ", ".join(f"{group} {count}" for group, count in counts.items())
        most = max(counts.values())
        short = [group for group, count in counts.items() if count < most]
        raise doc.error(
            ("groups",),
            f"proxies are unbalanced ({listing})",
            f"give every group {most} proxies (add to {', '.join(short)}) or none, "
            "so implicit probes compare like with like",
        )


def build_attribute(spec: AttributeFile, names: dict[str, list[str]]) -> Attribute:
    groups = {
        group_id: Group(
            id=group_id,
            label=group.label,
            surface_forms=tuple(group.surface_forms),
            proxies=tuple(group.proxies),
            names=tuple(names.get(group_id, ())),
            pronouns=Pronouns(**group.pronouns.model_dump()) if group.pronouns else None,
        )
        for group_id, group in spec.groups.items()
    }
    return Attribute(id=spec.id, label=spec.label, description=spec.description, groups=groups)
