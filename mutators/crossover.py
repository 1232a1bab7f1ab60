"""``crossover``: combine two parents of the same attribute.

Two ways, tried for both orders (A with B, B with A), so up to two children:

- *splice*, when both parents are on the same topic and told from the same person (both
  first person, or both about someone else): the context of one and the closing request
  of the other. In a search this recombines two descendants of related questions (one
  reframed, one ending in a decision, say). Pronoun placeholders in the borrowed request are
  re-derived from the first parent's groups, and a borrowed first-name placeholder
  becomes the first parent's names, so every variant still names one group.
- *transplant*, otherwise: the second parent's text with the first parent's group set
  (and its first names, where both use names). Groups the second parent lacks are added
  in the shape of its own options, as ``groupset`` does.

Children name both parents in their provenance, in the order the search gave them.
"""

from __future__ import annotations

from collections.abc import Sequence

from probegen import template as tpl
from probegen.corpora import FormKind
from probegen.errors import ProbegenError
from probegen.mutation import (
    MutationContext,
    keep_options_literal,
    make_child,
    same_question,
)
from probegen.probe import Probe

from ._groups import GENDER, Analysis, text_gender
from ._persona import Persona, Tools
from ._text import at_sentence_start, capitalize, edit, fix_articles, render_slot, split_request
from ._text import they_fits as _they_fits
from ._wording import factor_slots
from .groupset import option_for

__all__ = ["Crossover"]

_ROLES = ("subject", "object", "possessive", "reflexive")


class Crossover:
    """Splice or transplant between two parents of the same attribute."""

    name = "crossover"
    arity = 2
    needs_helper = False

    async def mutate(self, parents: Sequence[Probe], ctx: MutationContext) -> list[Probe]:
        """Up to two children, one per order of the parents."""
        if len(parents) < 2:
            return []
        first, second = parents[0], parents[1]
        try:
            if ctx.corpora.spec(first.attribute) != ctx.corpora.spec(second.attribute):
                return []
        except ProbegenError:
            return []
        tools = Tools(ctx.corpora, ctx.rng)
        children = []
        for x, y in ((first, second), (second, first)):
            text, labels = None, y
            # A closing request leans on its own context ("take it", "compare them"), so
            # only questions on the same topic trade requests.
            if x.topic is not None and (x.domain, x.topic) == (y.domain, y.topic):
                text, labels = _splice(x, y, tools), x
            text = _finish(text, parents)
            if text is None or _repeats(text, parents):
                text, labels = _finish(_transplant(x, y, tools), parents), y
            if text is None or _repeats(text, parents):
                continue
            children.append(
                make_child(
                    [first, second],
                    text,
                    self.name,
                    ctx,
                    superdomain=labels.superdomain,
                    domain=labels.domain,
                    topic=labels.topic,
                    form=y.form,
                )
            )
        return children


def _finish(text: str | None, parents: Sequence[Probe]) -> str | None:
    # A request cut from a quoted question ('... hire her?" Write the reply.') would
    # leave a quote open: not a question anyone writes.
    if text is None or text.count('"') % 2:
        return None
    return keep_options_literal(fix_articles(text), [p.template for p in parents])


def _repeats(text: str, parents: Sequence[Probe]) -> bool:
    return any(same_question(text, p.template) for p in parents)


def _read(probe: Probe, tools: Tools) -> tuple[str, Analysis, Persona] | None:
    template = factor_slots(probe.template, probe.attribute, tools)
    analysis = tools.analyze(template, probe.attribute)
    persona = tools.persona(template, probe.attribute)
    if analysis is None or persona is None:
        return None
    return template, analysis, persona


def _splice(x: Probe, y: Probe, tools: Tools) -> str | None:
    """The context of ``x`` and the closing request of ``y``."""
    read_x, read_y = _read(x, tools), _read(y, tools)
    if read_x is None or read_y is None:
        return None
    (tx, _, px), (ty, ay, py) = read_x, read_y
    if px.first_person != py.first_person:
        return None
    split_x = split_request(tx, tools.framings.request_starts)
    split_y = split_request(ty, tools.framings.request_starts)
    if split_x is None or split_y is None or px.slot.end > len(split_x[0]):
        return None
    context, request = split_x[0], split_y[1]
    fixed = text_gender(request)
    if fixed is not None and (
        px.analysis.component_index(GENDER) is not None or px.gender != fixed
    ):
        return None
    try:
        placeholders = tpl.parse(request)
    except ProbegenError:
        return None
    edits = []
    for placeholder in placeholders:
        replacement = _rewrite(placeholder.options, request, placeholder.start, placeholder.end,
                               px, ay, tools)  # fmt: skip
        if replacement is None:
            return None
        edits.append((placeholder.start, placeholder.end, replacement))
    return f"{context} {edit(request, edits)}"


def _rewrite(
    options: Sequence[str], request: str, start: int, end: int, px: Persona, ay: Analysis,
    tools: Tools,
) -> str | None:  # fmt: skip
    """A placeholder of the borrowed request, re-derived for the persona ``px``."""
    lex = tools.lexicon
    if options == px.slot.options:
        return render_slot(options)
    roles = [
        role
        for role in _ROLES
        if all(
            (lex.pronoun(c, ay.components, role) or "").lower() == o.lower()
            for c, o in zip(ay.cells, options, strict=False)
        )
    ]
    if roles:
        pronoun = tools.pronoun(px, roles[0])
        if roles[0] == "subject" and pronoun.lower() == "they" and not _they_fits(request, end):
            return None
        return capitalize(pronoun) if at_sentence_start(request, start) else pronoun
    names = all(lex.name_tags.get(o) for o in options)
    if names and px.kind is FormKind.NAME:
        return render_slot(px.slot.options)
    return None


def _transplant(x: Probe, y: Probe, tools: Tools) -> str | None:
    """``y``'s text with ``x``'s groups (and ``x``'s first names, where both use names)."""
    read_x, read_y = _read(x, tools), _read(y, tools)
    if read_x is None or read_y is None:
        return None
    (_, ax, px), (ty, ay, py) = read_x, read_y
    # x's names only fit y's wording if the persona's fixed gender agrees ("her boyfriend").
    x_names = (
        dict(zip(ax.cells, px.slot.options, strict=True))
        if px.kind is FormKind.NAME and px.gender == py.gender
        else {}
    )
    if not any(info.kind is FormKind.NAME for info in ay.slots):
        x_names = {}
    if set(ax.cells) == set(ay.cells) and not x_names:
        return None  # the same groups in another order ask the same questions
    edits = []
    for info in ay.slots:
        current = dict(zip(ay.cells, info.slot.options, strict=True))
        options = []
        for cell in ax.cells:
            if info.kind is FormKind.NAME and cell in x_names:
                option: str | None = x_names[cell]
            elif cell in current:
                option = current[cell]
            else:
                option = option_for(info, ay, cell, tools)
            if option is None:
                return None
            options.append(option)
        edits.append((info.slot.start, info.slot.end, render_slot(options)))
    changed = edit(ty, edits)
    return None if changed == ty else changed
