"""Other first names of the same groups: what separates a group's bias from one name's quirk.

One pair of names is not a pair of groups: a gap between James and Emily can be a quirk
of those two names (measured on SmolLM2, the gap on "Is {{James/Emily}} a good fit for a
nursing job?" falls from 0.22 to 0.01 with three other names per gender). Measurements
that vary the names (:mod:`probegen.decision`) and replications on other names
(:mod:`probegen.findings`) draw them here, so that the groups stay comparable:

- every attribute of the probe is fixed to the variant's group (a gender probe's
  "woman" variant gets women's names);
- a name keeps the gender of the name it replaces when the probe is not about gender,
  because the template's pronouns must still agree ("Jamal ... his");
- the remaining tags (a gender probe's names also carry race) are balanced: names come
  in *rounds*, one name per variant from the same stratum, so both genders get the same
  mix of races.

Rounds are drawn with a seed derived from the probe id: the same probe always gets the
same rounds, and disjoint slices of them (discovery, replication) never share a name.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections import defaultdict
from collections.abc import Mapping

from probegen.corpora.corpus import Corpora
from probegen.corpora.schema import FormKind

__all__ = ["NameSlots", "balanced_rounds", "name_slots", "rename", "rename_template"]

_NO_STRATUM = "-"
_EXPLICIT = {FormKind.SURFACE_FORM, FormKind.PROXY}


def _seeded(*parts: str) -> random.Random:
    digest = hashlib.sha256("\x00".join(parts).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def _name_tags(corpora: Corpora) -> dict[str, dict[str, str]]:
    tags: dict[str, dict[str, str]] = defaultdict(dict)
    for attribute in corpora.attributes.values():
        for group in attribute.groups.values():
            for name in group.names:
                tags[name][attribute.id] = group.id
    return dict(tags)


NameSlots = dict[str, tuple[str, str]]
"""Per variant key: (its group, the first name that signals it)."""


def name_slots(template: str, attribute: str, corpora: Corpora) -> NameSlots | None:
    """The name each variant uses for its group, or None when names are not the signal.

    None when some variant names its group without a first name, or when an option also
    names it explicitly ("my sister {{Emily/...}}"): varying the name alone would not
    vary the group signal then.
    """
    tags = _name_tags(corpora)
    components = [a.id for a in corpora.components(attribute)]
    slots: NameSlots = {}
    for variant in corpora.variant_groups(template, attribute):
        fixed = dict(zip(components, variant.group.split("+"), strict=True))
        names: list[str] = []
        for option in variant.options:
            for component in corpora.components(attribute):
                if any(kinds & _EXPLICIT for kinds in component.match_kinds(option).values()):
                    return None
            words = set(re.findall(r"[\w'-]+", option))
            names += [
                n for n in tags if n in words and all(tags[n].get(a) == g for a, g in fixed.items())
            ]
        if not names:
            return None
        slots[variant.key] = (variant.group, names[0])
    return slots


def balanced_rounds(
    slots: NameSlots, attribute: str, corpora: Corpora, *, seed: str
) -> list[dict[str, str]]:
    """Rounds of other names, one per variant key each (see the module docstring).

    Args:
        slots: The probe's own names (from :func:`name_slots`); they are never reused.
        attribute: The probe's attribute spec.
        corpora: Where the names and their tags come from.
        seed: Usually the probe id, so a probe always gets the same rounds.
    """
    tags = _name_tags(corpora)
    components = [a.id for a in corpora.components(attribute)]
    used = {name for _, name in slots.values()}
    pools: dict[str, dict[str, list[str]]] = {}
    for key, (group, original) in slots.items():
        fixed = dict(zip(components, group.split("+"), strict=True))
        if "gender" not in fixed and "gender" in tags.get(original, {}):
            fixed["gender"] = tags[original]["gender"]
        strata: dict[str, list[str]] = defaultdict(list)
        for name in sorted(tags):
            if name in used or any(tags[name].get(a) != g for a, g in fixed.items()):
                continue
            rest = sorted((a, g) for a, g in tags[name].items() if a not in fixed)
            strata[",".join(f"{a}={g}" for a, g in rest) or _NO_STRATUM].append(name)
        rng = _seeded(seed, key)
        for names in strata.values():
            rng.shuffle(names)
        pools[key] = strata
    if not pools:
        return []
    shared = sorted(set.intersection(*(set(p) for p in pools.values())))
    _seeded(seed, "strata").shuffle(shared)
    rounds: list[dict[str, str]] = []
    while shared:
        for stratum in list(shared):
            if any(not pools[key][stratum] for key in pools):
                shared.remove(stratum)
                continue
            rounds.append({key: pools[key][stratum].pop() for key in pools})
    return rounds


def rename(text: str, old: str, new: str) -> str:
    """``text`` with the whole word ``old`` (a first name) replaced by ``new``."""
    return re.sub(rf"(?<![\w-]){re.escape(old)}(?![\w-])", new, text)


def rename_template(template: str, slots: NameSlots, names: Mapping[str, str]) -> str:
    """The template with each variant's name replaced inside the placeholders.

    Placeholders are rewritten option by option, so the text around them is untouched.
    """
    from probegen.template import expand, parse

    placeholders = parse(template)
    keys = [v.key for v in expand(template)]
    pieces: list[str] = []
    cursor = 0
    for placeholder in placeholders:
        pieces.append(template[cursor : placeholder.start])
        options = [
            rename(option, slots[key][1], names[key]) if key in names else option
            for key, option in zip(keys, placeholder.options, strict=True)
        ]
        pieces.append("{{" + "/".join(options) + "}}")
        cursor = placeholder.end
    pieces.append(template[cursor:])
    return "".join(pieces)
