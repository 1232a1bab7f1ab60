"""``decision``: turn an open question into a decision.

The parent's closing request is replaced by a decision question from ``framings.yaml``:

- a yes/no decision about the persona, by domain ("Should I approve {{his/her}}
  application? Answer yes or no, then explain.");
- a choice between the persona and one fixed other candidate ("Should I hire
  {{James/Emily}} or the other finalist? Pick one and explain why."). The other candidate
  is the same in every variant, so the probe stays counterfactual: comparing groups
  inside one variant ("James or Emily?") would not be;
- for an asker speaking about their own plan ("I want to ..."), a yes/no on going ahead.

Decisions make the answer comparable across variants (discrim-eval's setting), and the
two-candidate form is the relative comparison the literature finds more diagnostic.
"""

from __future__ import annotations

from collections.abc import Sequence

from probegen.corpora import FormKind
from probegen.mutation import MutationContext, make_child
from probegen.probe import Probe, QuestionForm

from ._framings import DecisionSet
from ._persona import Persona, Tools
from ._text import edit, fix_articles, render_slot, split_request
from ._wording import factor_slots
from .topic_shift import fill_pronouns

__all__ = ["Decision", "render_question", "yes_no_questions"]


class Decision:
    """Replace the closing request with a yes/no or two-candidate decision."""

    name = "decision"
    arity = 1
    needs_helper = False

    async def mutate(self, parents: Sequence[Probe], ctx: MutationContext) -> list[Probe]:
        """One child ending in a decision, or none when no decision fits the domain."""
        parent = parents[0]
        tools = Tools(ctx.corpora, ctx.rng)
        template = factor_slots(parent.template, parent.attribute, tools)
        persona = tools.persona(template, parent.attribute)
        if persona is None:
            return []
        split = split_request(template, tools.framings.request_starts)
        if split is None:
            return []
        context, _ = split
        if persona.slot.end > len(context):
            return []
        # A question the parent already ends with would give the parent back.
        choices = [
            (form, rendered)
            for form, question in _choices(parent, persona, context, tools)
            if (rendered := render_question(question, persona, tools)) not in template
        ]
        if not choices:
            return []
        form, question = tools.rng.choice(choices)
        text = fix_articles(edit(f"{context} {question}", []))
        return [make_child(parents, text, self.name, ctx, form=form)]


def _choices(
    parent: Probe, persona: Persona, context: str, tools: Tools
) -> list[tuple[QuestionForm, str]]:
    yes_no = yes_no_questions(persona, context, parent.topic, parent.domain, tools)
    if persona.first_person:
        return [(QuestionForm.DECISION, q) for q in yes_no]
    choices = []
    if parent.form is not QuestionForm.COMPARISON:
        two = _fitting(tools.framings.decisions.two_candidates, parent.topic, parent.domain)
        choices += [(QuestionForm.COMPARISON, q) for q in two]
    if parent.form is not QuestionForm.DECISION:
        choices += [(QuestionForm.DECISION, q) for q in yes_no]
    return choices


def yes_no_questions(
    persona: Persona, context: str, topic: str | None, domain: str | None, tools: Tools
) -> list[str]:
    """The yes/no decision questions of ``framings.yaml`` that fit, still with their slots.

    For an asker speaking about themselves, the questions on going ahead, and only when
    ``context`` states a plan (a first-person cue such as "I want to"); otherwise the
    questions about the person listed for ``topic``, else for ``domain``.
    """
    decisions = tools.framings.decisions
    if persona.first_person:
        lowered = context.lower()
        if not any(cue.lower() in lowered for cue in decisions.first_person_cues):
            return []
        return list(decisions.first_person)
    return _fitting(decisions.yes_no, topic, domain)


def _fitting(sets: Sequence[DecisionSet], topic: str | None, domain: str | None) -> list[str]:
    """The questions for ``topic``, else for ``domain``."""
    for key in (topic, domain):
        found = [q for entry in sets if key in entry.where for q in entry.questions]
        if found:
            return found
    return []


def render_question(question: str, persona: Persona, tools: Tools) -> str:
    """``question`` with ``{who}`` and the pronoun slots filled for ``persona``."""
    if "{who}" in question:
        who = (
            render_slot(persona.slot.options)
            if persona.kind is FormKind.NAME
            else tools.pronoun(persona, "object")
        )
        question = question.replace("{who}", who)
    return fill_pronouns(question, persona, tools)
