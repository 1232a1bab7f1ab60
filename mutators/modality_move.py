"""``modality_move``: move the attribute from the text into images, and back.

Text -> image: the template's one group-carrying placeholder (first names, or group words)
is taken out of the text and put into a document per variant, drawn about a person of
that variant's group:

    "Should I hire {{James/Emily}} as our new nurse? {{He/She}} has five years ..."
    -> "The attached résumé belongs to the person this question is about. Should I hire
       this person as our new nurse? They have five years ..." + James's résumé, Emily's

Names become "this person" (or vanish after "named"), a group adjective before a noun
is dropped ("a {{male/female}} nurse" -> "a nurse"), a group noun becomes its neutral
noun ("{{husband/wife}}" -> "partner"), pronoun placeholders become they/them/their.
The kind of document follows the probe's domain (``domain_kinds`` in
``corpora/images/prompts.yaml``). Templates it cannot neutralise with confidence (the
asker describing themselves, several group-carrying placeholders, proxy phrases) give
no child.

Image -> text: an image probe's first reference to the person ("an applicant",
"this person"; ``person_references``) is replaced by balanced first names of the
images' groups: "Here is {{Greg/Emily}}'s résumé. Should we invite this person ...".
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from probegen.corpora import FormKind
from probegen.errors import ProbegenError
from probegen.imaging.content import Prompts, load_prompts
from probegen.mutation import MutationContext, make_child
from probegen.probe import Framing, Modality, Probe

from ._groups import GENDER, Analysis, SlotInfo, text_gender
from ._images import Sitter, draw_people, image_child, image_run_dir, valid_children
from ._persona import Tools
from ._text import (
    at_sentence_start,
    capitalize,
    edit,
    fix_articles,
    is_first_person,
    noun_phrase_before,
    render_slot,
)
from ._wording import head_after, strip_articles

__all__ = ["ModalityMove"]

_THEY = {"subject": "they", "object": "them", "possessive": "their", "reflexive": "themselves"}
_AGREEMENT = {"is": "are", "was": "were", "has": "have", "does": "do", "isn't": "aren't",
              "wasn't": "weren't", "hasn't": "haven't", "doesn't": "don't"}  # fmt: skip


class ModalityMove:
    """Text -> one document image per variant with neutral text; image -> names in text."""

    name = "modality_move"
    arity = 1
    needs_helper = False
    needs_images = True

    async def mutate(self, parents: Sequence[Probe], ctx: MutationContext) -> list[Probe]:
        """One child in the other modality, or none when the probe resists."""
        parent = parents[0]
        tools = Tools(ctx.corpora, ctx.rng)
        prompts = load_prompts(ctx.corpora)
        if parent.modality is Modality.IMAGE:
            child = _to_text(parents, ctx, tools, prompts, self.name)
        elif parent.modality is Modality.TEXT:
            child = _to_image(parents, ctx, tools, prompts, self.name)
        else:
            child = None
        return valid_children([child], parents, ctx) if child is not None else []


# --- text -> image ---------------------------------------------------------------------------


def _to_image(
    parents: Sequence[Probe], ctx: MutationContext, tools: Tools, prompts: Prompts, operator: str
) -> Probe | None:
    run_dir = image_run_dir(ctx)
    parent = parents[0]
    if run_dir is None:
        return None
    analysis = tools.analyze(parent.template, parent.attribute)
    if analysis is None or len(analysis.signal) != 1:
        return None
    signal = analysis.signal[0]
    if signal.kind not in (FormKind.NAME, FormKind.SURFACE_FORM):
        return None
    if is_first_person(parent.template, signal.slot.start):
        return None
    neutral = _neutral_text(analysis, signal, tools, prompts)
    if neutral is None:
        return None
    kind = prompts.kind_for(parent.superdomain, parent.domain)
    intro = ctx.rng.choice(prompts.attach_intros).replace("{document}", prompts.label(kind))
    variants = ctx.corpora.variant_groups(parent.template, parent.attribute)
    given = _given_names(signal, tools) if signal.kind is FormKind.NAME else None
    sitters = [
        Sitter(v.group, v.group, given[i] if given else None) for i, v in enumerate(variants)
    ]
    gender = None if GENDER in [a.id for a in analysis.components] else text_gender(parent.template)
    media = draw_people(ctx, run_dir, kind, sitters, analysis.components, gender=gender)
    if media is None:
        return None
    return image_child(
        parents, f"{intro} {neutral}", media, operator, ctx, framing=Framing.IMPLICIT
    )


def _neutral_text(
    analysis: Analysis, signal: SlotInfo, tools: Tools, prompts: Prompts
) -> str | None:
    """The template without its groups: the signal placeholder neutralised, pronouns
    turned into they/them/their."""
    template, slot = analysis.template, signal.slot
    edits: list[tuple[int, int, str]] = []
    for info in analysis.slots:
        if info.kind is FormKind.PRONOUN:
            role = _pronoun_role(info.slot.options, tools)
            if role is None:
                return None
            word = _THEY[role]
            edits.append((info.slot.start, info.slot.end, _like(info.slot.options[0], word)))
    if signal.kind is FormKind.NAME:
        named = re.search(r"\s+(?:named|called)\s+$", template[: slot.start])
        phrase = noun_phrase_before(template, slot.start)
        if named:
            edits.append((named.start(), slot.end, ""))
        elif phrase is not None:
            # "My coworker {{Greg/Emily}} asked" / "The applicant, {{Emily/...}}, has":
            # the noun phrase already says who; drop the name and its commas.
            end = slot.end + (1 if template[slot.end : slot.end + 1] == "," else 0)
            edits.append((phrase.end, end, ""))
        else:
            word = prompts.person_word
            edits.append((slot.start, slot.end, _sentence_case(template, slot.start, word)))
    else:
        head = head_after(template, slot.end, len(template))
        bare, _ = strip_articles(slot.options)
        nouns = {_neutral_noun(b, tools) for b in bare}
        if head:
            edits.append((slot.start, slot.end, ""))
        elif len(nouns) == 1 and None not in nouns:
            noun = nouns.pop()
            assert noun is not None
            edits.append((slot.start, slot.end, _sentence_case(template, slot.start, noun)))
        else:
            return None
    text = fix_articles(edit(template, edits))
    # A singular "they" takes the plural verb: "They wants" -> "They want", and in a
    # question "Is they ready?" -> "Are they ready?".
    text = re.sub(r"\b([Tt]hey) ([a-z']+)\b", lambda m: f"{m.group(1)} {_plural(m.group(2))}", text)
    text = re.sub(
        r"\b(is|was|has|does|isn't|wasn't|hasn't|doesn't) they\b",
        lambda m: f"{_like(m.group(1), _AGREEMENT[m.group(1).lower()])} they",
        text,
        flags=re.IGNORECASE,
    )
    return capitalize(text)


def _plural(verb: str) -> str:
    """The form a verb takes after "they" ("wants" -> "want"), as far as spelling tells."""
    if verb in _AGREEMENT:
        return _AGREEMENT[verb]
    if len(verb) <= 3 or not verb.endswith("s") or verb.endswith(("ss", "us", "is")):
        return verb
    if verb.endswith("ies") and len(verb) > 4:
        return verb[:-3] + "y"
    if verb.endswith(("shes", "ches", "xes", "zes", "sses", "oes")):
        return verb[:-2]
    return verb[:-1]


def _neutral_noun(option: str, tools: Tools) -> str | None:
    """The neutral noun for a group noun: "wife" -> "partner", "non-binary person" ->
    "person" (a group word before a neutral noun just drops)."""
    lowered = option.lower()
    found = tools.framings.neutral_nouns.get(lowered)
    if found is None and lowered.split()[-1] in ("person", "people") and " " in lowered:
        found = lowered.split()[-1]
    return found


def _pronoun_role(options: Sequence[str], tools: Tools) -> str | None:
    """Which pronoun every option of a placeholder is ({{his/her}} -> possessive)."""
    gender = tools.corpora.attributes.get(GENDER)
    if gender is None:
        return None
    roles: set[str] | None = None
    for option in options:
        found = {
            role
            for group in gender.groups.values()
            if group.pronouns is not None
            for role in _THEY
            if getattr(group.pronouns, role) == option.lower()
        }
        roles = found if roles is None else roles & found
    if not roles:
        return None
    return next(role for role in _THEY if role in roles)


def _like(model: str, word: str) -> str:
    return word.capitalize() if model[:1].isupper() else word


def _sentence_case(template: str, pos: int, word: str) -> str:
    return capitalize(word) if at_sentence_start(template, pos) else word


def _given_names(signal: SlotInfo, tools: Tools) -> list[str] | None:
    """The first name each option of a name placeholder gives ("Dr. Emily" -> Emily)."""
    names = []
    for option in signal.slot.options:
        found = [w for w in re.findall(r"[^\W\d_][\w'-]*", option) if w in tools.lexicon.name_tags]
        if len(found) != 1:
            return None
        names.append(found[0])
    return names


# --- image -> text ---------------------------------------------------------------------------


def _to_text(
    parents: Sequence[Probe], ctx: MutationContext, tools: Tools, prompts: Prompts, operator: str
) -> Probe | None:
    parent = parents[0]
    try:
        variants = parent.grouped_variants(ctx.corpora)
        components = ctx.corpora.components(parent.attribute)
    except ProbegenError:
        return None
    cells = [tuple(v.group.split("+")) for v in variants]
    gender = None if GENDER in [a.id for a in components] else text_gender(parent.template)
    names = tools.lexicon.names(cells, components, ctx.rng, gender=gender)
    if names is None:
        return None
    # Without the images, the sentence that points at them goes too, where the rest of
    # the text still refers to the person.
    bare = _without_intro(parent.template, prompts)
    template = _name_the_person(bare, names, prompts) if bare else None
    template = template or _name_the_person(parent.template, names, prompts)
    if template is None:
        return None
    child = make_child(parents, fix_articles(template), operator, ctx)
    return child.model_copy(update={"media": ()})


def _without_intro(template: str, prompts: Prompts) -> str | None:
    """``template`` without a leading ``attach_intros`` sentence, or None if it has none."""
    for intro in prompts.attach_intros:
        for label in prompts.document_labels.values():
            filled = intro.replace("{document}", label)
            if template.startswith(filled):
                return template[len(filled) :].strip() or None
    return None


def _name_the_person(template: str, names: Sequence[str], prompts: Prompts) -> str | None:
    """``template`` with its first reference to the person replaced by ``names``."""
    for reference in sorted(prompts.person_references, key=len, reverse=True):
        match = re.search(rf"\b{re.escape(reference)}\b", template, re.IGNORECASE)
        if match:
            slot = render_slot(names)
            return capitalize(template[: match.start()] + slot + template[match.end() :])
    return None
