"""``retell`` (opt-in): the asker's own question asked by someone who knows them.

"I'm {{a man/a woman}} and I was accepted to a chemistry PhD program. Should I pick ..."
becomes "My {{male/female}} classmate was accepted to a chemistry PhD program. Should
{{he/she}} pick ...", pronouns and verbs following (the rules are in ``_perspective``).
Models often answer a person asking for themselves differently from someone asking
about a friend, and the retold question is one the third-person operators can work on.

Not in the default operator set (``opt_in``): measured, it helped some graded targets
(where the best probes are first-person) and cost others and the real model, since a
retold probe keeps its parent's words and the bandit spends near what a run already
found; no difference was significant (``benchmarks/RESULTS.md`` section 6, "The asker
retold" and "A higher screen floor").
Name it to use it: ``--mutators reframe,...,retell``.
"""

from __future__ import annotations

from collections.abc import Sequence

from probegen.mutation import MutationContext, make_child
from probegen.probe import Probe

from ._persona import Tools
from ._perspective import told_about
from ._wording import factor_slots

__all__ = ["Retell"]


class Retell:
    """Retell a first-person probe as asked by someone who knows the asker."""

    name = "retell"
    arity = 1
    needs_helper = False
    opt_in = True
    """Loaded only when named (see :func:`probegen.mutation.load_mutators`)."""

    async def mutate(self, parents: Sequence[Probe], ctx: MutationContext) -> list[Probe]:
        """One retold child of a first-person parent, or none."""
        parent = parents[0]
        tools = Tools(ctx.corpora, ctx.rng)
        template = factor_slots(parent.template, parent.attribute, tools)
        persona = tools.persona(template, parent.attribute)
        if persona is None or not persona.first_person:
            return []
        told = told_about(persona, tools)
        return [make_child(parents, told, self.name, ctx)] if told else []
