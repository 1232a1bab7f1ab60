"""``compose``: write a new question from the parts the corpora hold.

A child is put together from ``compose`` in ``framings.yaml`` and the taxonomy:

- a *situation* ("{person} is thinking about majoring in {entity}."), filled with one
  *entity* of its list ("mechanical engineering", "the robotics club") or, for a
  situation with no domain, any taxonomy topic; the child is labelled with the
  situation's domain and topic (or the drawn topic);
- the *persona*: the parent's, told in the parent's own way (its first names, proxy or
  group words, first or third person, as ``topic_shift`` does), or now and then a new one
  from the attribute (balanced first names or group words of the parent's groups, first
  or third person), so the search explores how the person is named as well;
- a *closing*: an open request, or a yes/no decision (``decisions`` in ``framings.yaml``
  for the situation's topic or domain, ``first_person`` when the asker states a plan, and
  ``compose.yes_no`` about a plan the situation describes). Yes/no children end in the
  question the decision measurement reads (:func:`probegen.decision.form.decision_body`).

Other operators only rework the text they are given, or move it to one fixed scenario
per domain, so words that appear nowhere in those never reach a probe. Entities make
the corpora's vocabulary composable: any entity can meet any persona and any closing.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from probegen.decision.form import is_yes_no_question
from probegen.mutation import MutationContext, make_child, same_question
from probegen.probe import Probe, QuestionForm

from ._framings import Scenario, Situation, names_group
from ._persona import Persona, Tools
from ._text import edit, fix_articles, render_slot
from ._wording import factor_slots
from .decision import render_question, yes_no_questions
from .topic_shift import retell

__all__ = ["Compose", "fresh_persona"]

_FRESH = 0.25
"""How often the persona is written anew from the attribute instead of kept."""
_YES_NO = 0.5
"""How often a situation that a yes/no decision fits ends in one."""
_TRIES = 3
"""Draws before giving up when a draw gives the parent's own question back."""

Labels = tuple[str | None, str | None, str | None]
"""Superdomain, domain and topic of a child."""


class Compose:
    """Compose a new question: situation x entity or topic x persona x closing."""

    name = "compose"
    arity = 1
    needs_helper = False

    async def mutate(self, parents: Sequence[Probe], ctx: MutationContext) -> list[Probe]:
        """One composed child, or none when the corpora hold no situations or no persona."""
        parent = parents[0]
        tools = Tools(ctx.corpora, ctx.rng)
        situations = tools.framings.compose.situations
        if not situations:
            return []
        template = factor_slots(parent.template, parent.attribute, tools)
        persona = tools.persona(template, parent.attribute)
        if persona is None:
            return []
        if tools.rng.random() < _FRESH:
            persona = fresh_persona(persona, parent.attribute, tools) or persona
        for _ in range(_TRIES):
            composed = _compose(tools.rng.choice(situations), persona, tools)
            if composed is None or same_question(composed[0], parent.template):
                continue
            text, form, (superdomain, domain, topic) = composed
            labels = {"superdomain": superdomain, "domain": domain, "topic": topic}
            return [make_child(parents, text, self.name, ctx, form=form, **labels)]
        return []


def fresh_persona(persona: Persona, attribute: str, tools: Tools) -> Persona | None:
    """A new persona for the same groups: first names or group words, first or third person.

    Names are balanced as :meth:`~mutators._groups.Lexicon.names` draws them; groups
    without first names (none is an honest signal of "non-binary") get group words.
    """
    analysis = persona.analysis
    lexicon = tools.lexicon
    names = None
    if tools.rng.random() < 0.5:
        names = lexicon.names(analysis.cells, analysis.components, tools.rng)
    options = names or [lexicon.noun(cell, analysis.components) for cell in analysis.cells]
    # Read back through the corpora, so kind, gender and pronouns come out as for a parent.
    fresh = tools.persona(render_slot(options), attribute)
    if fresh is None:
        return None
    return dataclasses.replace(fresh, first_person=tools.rng.random() < 0.5)


def _compose(
    situation: Situation, persona: Persona, tools: Tools
) -> tuple[str, QuestionForm, Labels] | None:
    """The composed text, its form and its labels, or None when a part does not fit."""
    placed = _place(situation, tools)
    if placed is None:
        return None
    scenario, labels = placed
    context = retell(persona, scenario, tools)
    if context is None:
        return None
    _, domain, topic = labels
    decisions: list[str] = []
    if situation.domain is not None:
        decisions = yes_no_questions(persona, context, topic, domain, tools)
        if situation.plan and not persona.first_person:
            decisions += tools.framings.compose.yes_no
        # Only a question the decision measurement can read ("If you were on the
        # committee, would you ...?" opens with a clause it does not parse).
        decisions = [q for q in decisions if is_yes_no_question(q[: q.find("?") + 1])]
    requests = tools.framings.compose.requests
    if decisions and tools.rng.random() < _YES_NO:
        form, closings = QuestionForm.DECISION, decisions
    else:
        form, closings = situation.form, requests.first if persona.first_person else requests.third
    if not closings:
        return None
    closing = render_question(tools.rng.choice(closings), persona, tools)
    return fix_articles(edit(f"{context} {closing}", [])), form, labels


def _place(situation: Situation, tools: Tools) -> tuple[Scenario, Labels] | None:
    """The situation as a scenario with its entity or topic filled in, and its labels."""
    taxonomy = tools.corpora.taxonomy
    third, first = situation.third, situation.first
    if situation.domain is None:
        topics = [
            (s.id, d.id, topic)
            for s, d, topic in taxonomy.topics()
            if names_group(topic, tools.corpora) is None
        ]
        if not topics:
            return None
        labels: Labels = tools.rng.choice(topics)
        third, first = (text.replace("{topic}", str(labels[2])) for text in (third, first))
    else:
        superdomain = next(s.id for s, d in taxonomy.domains() if d.id == situation.domain)
        labels = (superdomain, situation.domain, situation.topic)
    if situation.entities is not None:
        entity = tools.rng.choice(tools.framings.compose.entities[situation.entities])
        third, first = (text.replace("{entity}", entity) for text in (third, first))
    scenario = Scenario(
        topic=labels[2] or "",
        form=situation.form,
        relation=situation.relation,
        third=third,
        first=first,
    )
    return scenario, labels
