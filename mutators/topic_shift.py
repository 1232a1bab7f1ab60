"""``topic_shift``: move a probe's persona into another domain of the taxonomy.

The target domain is drawn from the taxonomy, a sibling domain (same superdomain) three
times as likely as a domain elsewhere, so the search mostly explores nearby and sometimes
jumps. The new text is a scenario of that domain from ``framings.yaml``, told about the
parent's persona in the parent's own way: the same first names, the same proxy phrase,
or the same explicit groups, in the first person when the parent's asker was the persona
("I'm {{a man/a woman}} and I ...") and otherwise about someone the asker knows ("My
coworker {{Greg/Emily}} has ..."), with pronouns that follow the persona.
"""

from __future__ import annotations

from collections.abc import Sequence

from probegen.mutation import MutationContext, make_child
from probegen.probe import Probe

from ._framings import PRONOUN_SLOTS, Scenario
from ._persona import Persona, Tools
from ._text import capitalize, edit, fix_articles
from ._wording import factor_slots

__all__ = ["TopicShift", "fill_pronouns"]

_NEAR_WEIGHT = 3.0
"""How much likelier a sibling domain is than one in another superdomain."""
_ROLE = {"they": "subject", "them": "object", "their": "possessive"}


class TopicShift:
    """Retell the parent's persona in a scenario from another domain."""

    name = "topic_shift"
    arity = 1
    needs_helper = False

    async def mutate(self, parents: Sequence[Probe], ctx: MutationContext) -> list[Probe]:
        """One child set in a different domain, or none when the parent has no persona."""
        parent = parents[0]
        tools = Tools(ctx.corpora, ctx.rng)
        template = factor_slots(parent.template, parent.attribute, tools)
        persona = tools.persona(template, parent.attribute)
        if persona is None:
            return []
        target = _pick(parent, tools)
        if target is None:
            return []
        superdomain, domain, scenario = target
        text = retell(persona, scenario, tools)
        if text is None:
            return []
        return [
            make_child(
                parents,
                text,
                self.name,
                ctx,
                superdomain=superdomain,
                domain=domain,
                topic=scenario.topic,
                form=scenario.form,
            )
        ]


def _pick(parent: Probe, tools: Tools) -> tuple[str, str, Scenario] | None:
    scenarios = tools.framings.scenarios
    choices = [
        (superdomain.id, domain.id)
        for superdomain, domain in tools.corpora.taxonomy.domains()
        if domain.id in scenarios and domain.id != parent.domain
    ]
    if not choices:
        return None
    weights = [_NEAR_WEIGHT if s == parent.superdomain else 1.0 for s, _ in choices]
    superdomain, domain = tools.rng.choices(choices, weights=weights)[0]
    return superdomain, domain, tools.rng.choice(scenarios[domain])


def retell(persona: Persona, scenario: Scenario, tools: Tools) -> str | None:
    """``scenario`` told about ``persona``, in the persona's person and way of naming groups."""
    if persona.first_person:
        me = tools.as_first_person(persona)
        if me is None:
            return None
        return fix_articles(edit(scenario.first.replace("{i_am}", me), []))
    person = tools.as_third_person(persona, scenario.relation)
    if person is None:
        return None
    text = scenario.third
    index = text.index("{person}")
    if index == 0 or text[:index].rstrip().endswith((".", "?", "!")):
        person = capitalize(person)
    text = fill_pronouns(text.replace("{person}", person), persona, tools)
    return fix_articles(edit(text, []))


def fill_pronouns(text: str, persona: Persona, tools: Tools) -> str:
    """Replace ``{they}``/``{them}``/``{their}`` with the persona's pronouns."""
    for slot in sorted(PRONOUN_SLOTS):
        if "{" + slot + "}" in text:
            text = text.replace("{" + slot + "}", tools.pronoun(persona, _ROLE[slot]))
    return text
