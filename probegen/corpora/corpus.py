"""The loaded corpora, and the check that ties a template to an attribute's groups."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from probegen.corpora.images import ImageSet
from probegen.corpora.schema import (
    Attribute,
    FormKind,
    GroupedVariant,
    Seed,
    Taxonomy,
    normalize_id,
)
from probegen.errors import UsageError
from probegen.probe import Framing
from probegen.template import Variant, expand
from probegen.template import template_error as _error

__all__ = ["Corpora"]

_IMPLICIT_KINDS = {FormKind.NAME, FormKind.PROXY}


class Corpora:
    """Attributes, taxonomy and seeds, validated; see :func:`probegen.corpora.load_corpora`.

    Attributes:
        root: The directory the corpora were read from.
        attributes: Attributes by id, sorted by id.
        taxonomy: Superdomains, domains and topics.
        seeds: The seed questions, in file order.
        image_sets: The image sets under ``images/`` (see :mod:`probegen.corpora.images`).
    """

    def __init__(
        self,
        root: Path,
        attributes: dict[str, Attribute],
        taxonomy: Taxonomy,
        seeds: Sequence[Seed] = (),
        image_sets: Sequence[ImageSet] = (),
    ) -> None:
        self.root = root
        self.attributes = attributes
        self.taxonomy = taxonomy
        self.seeds = list(seeds)
        self.image_sets = tuple(image_sets)

    def __repr__(self) -> str:
        return (
            f"Corpora(root={str(self.root)!r}, attributes={len(self.attributes)}, "
            f"domains={sum(1 for _ in self.taxonomy.domains())}, seeds={len(self.seeds)})"
        )

    def attribute(self, attr_id: str) -> Attribute:
        """The attribute ``attr_id``; '-' may stand for '_' ("sexual-orientation").

        Raises:
            UsageError: If it is unknown; the message lists the known attributes.
        """
        found = self.attributes.get(normalize_id(attr_id))
        if found is None:
            raise UsageError(
                f"unknown attribute '{attr_id}'",
                fix=f"use one of: {', '.join(self.attributes) or '(none defined)'}; "
                "join several with '+' for an intersection, e.g. gender+race",
            )
        return found

    def components(self, spec: str) -> list[Attribute]:
        """The attributes of ``spec``: "gender+race" -> [gender, race]; "race" -> [race].

        Raises:
            UsageError: On an unknown, empty or repeated component.
        """
        parts = spec.split("+")
        if any(not part.strip() for part in parts):
            raise UsageError(
                f"attribute spec '{spec}' has an empty component",
                fix="write one attribute id, or several joined by '+', e.g. gender+race",
            )
        attributes = [self.attribute(part) for part in parts]
        ids = [attribute.id for attribute in attributes]
        if len(set(ids)) != len(ids):
            raise UsageError(
                f"attribute spec '{spec}' names an attribute twice",
                fix="list each attribute once, e.g. gender+race",
            )
        return attributes

    def spec(self, spec: str) -> str:
        """The canonical form of an attribute spec: "Sexual-Orientation" -> "sexual_orientation"."""
        return "+".join(attribute.id for attribute in self.components(spec))

    def group_ids(self, spec: str) -> set[str]:
        """Every group id of an attribute spec; for an intersection, the '+'-joined
        combinations in the spec's order ("woman+black" for gender+race)."""
        combos = [""]
        for attribute in self.components(spec):
            combos = [f"{c}+{g}" if c else g for c in combos for g in attribute.groups]
        return set(combos)

    def variant_groups(self, template: str, attribute: str) -> list[GroupedVariant]:
        """Expand ``template`` and give each variant the group it names.

        Every option of every placeholder must name exactly one group of each component
        attribute, the options of one placeholder must name different groups, and
        parallel placeholders must agree on each variant's group.

        Raises:
            TemplateError: If the template is malformed, names no group, or breaks one
                of the rules above; the message names the offending option.
            UsageError: If ``attribute`` is unknown.
        """
        return self._resolve(template, attribute)[0]

    def infer_framing(self, template: str, attribute: str) -> Framing:
        """``implicit`` when groups are signalled only by names, proxies and pronouns.

        A template is implicit when no option names its group by a surface form and at
        least one names it by a first name or proxy phrase; otherwise it is explicit
        (pronouns alone, "{{he/she}}", are explicit).

        Raises:
            TemplateError: As :meth:`variant_groups`.
            UsageError: If ``attribute`` is unknown.
        """
        kinds = self._resolve(template, attribute)[1]
        if any(FormKind.SURFACE_FORM in k for k in kinds) or not any(
            k & _IMPLICIT_KINDS for k in kinds
        ):
            return Framing.EXPLICIT
        return Framing.IMPLICIT

    def _resolve(
        self, template: str, attribute: str
    ) -> tuple[list[GroupedVariant], list[set[FormKind]]]:
        components = self.components(attribute)
        variants = expand(template)
        if not variants[0].options:
            example = "/".join(g.surface_forms[0] for g in list(components[0].groups.values())[:3])
            raise _error(
                template,
                f"names no group of attribute '{attribute}': it has no placeholder",
                f"put the groups in a placeholder, e.g. {{{{{example}}}}}",
            )
        kinds: list[set[FormKind]] = []
        columns: list[list[str]] = []
        for index in range(len(variants[0].options)):
            options = [variant.options[index] for variant in variants]
            groups: list[str] = []
            for option in options:
                parts: list[str] = []
                for component in components:
                    group_id, matched_by = self._one_group(template, option, component)
                    parts.append(group_id)
                    kinds.append(matched_by)
                groups.append("+".join(parts))
            self._check_distinct(template, options, groups)
            columns.append(groups)
        self._check_parallel(template, variants, columns)
        grouped = [
            GroupedVariant(variant.key, variant.text, variant.options, columns[0][i])
            for i, variant in enumerate(variants)
        ]
        return grouped, kinds

    @staticmethod
    def _one_group(template: str, option: str, attribute: Attribute) -> tuple[str, set[FormKind]]:
        matched = attribute.match_kinds(option)
        if not matched:
            raise _error(
                template,
                f"option '{option}' names no group of attribute '{attribute.id}'",
                f"use a surface form, name or proxy of one group, e.g. {attribute.examples()} "
                f"(see `probegen corpora show {attribute.id}`)",
            )
        if len(matched) > 1:
            listing = ", ".join(f"'{group}'" for group in matched)
            raise _error(
                template,
                f"option '{option}' is ambiguous: it names groups {listing} "
                f"of attribute '{attribute.id}'",
                "reword the option so it names exactly one group",
            )
        ((group_id, matched_by),) = matched.items()
        return group_id, matched_by

    @staticmethod
    def _check_distinct(template: str, options: list[str], groups: list[str]) -> None:
        first: dict[str, str] = {}
        for option, group in zip(options, groups, strict=True):
            if group in first:
                raise _error(
                    template,
                    f"options '{first[group]}' and '{option}' both name group '{group}'",
                    "give each option of a placeholder a different group",
                )
            first[group] = option

    @staticmethod
    def _check_parallel(template: str, variants: list[Variant], columns: list[list[str]]) -> None:
        for index, column in enumerate(columns[1:], start=1):
            for i, variant in enumerate(variants):
                if column[i] != columns[0][i]:
                    raise _error(
                        template,
                        f"placeholders disagree on variant {i + 1}: '{variant.options[0]}' "
                        f"names '{columns[0][i]}' but '{variant.options[index]}' "
                        f"names '{column[i]}'",
                        "placeholders fill in parallel: option i of every placeholder "
                        "must name the same group",
                    )
