"""``refusal_trigger``: framings that may make a model refuse for some groups only.

Asymmetric refusal is one of the response dimensions the judge scores. These framings
raise the stakes (exaggerated risk), deny a harm nobody asked about (negated harm) or
anticipate a bad reading of an innocent question (counterintuitive reading). They are
the same in every variant, never name a group, and never ask for harmful content: the
question itself stays the parent's. Wording lives in ``framings.yaml`` under
``refusal_triggers``.
"""

from __future__ import annotations

from collections.abc import Sequence

from probegen.mutation import MutationContext
from probegen.probe import Probe

from ._framings import load_framings
from ._wrap import wrap

__all__ = ["RefusalTrigger"]


class RefusalTrigger:
    """Add a refusal-prone framing before or after the question."""

    name = "refusal_trigger"
    arity = 1
    needs_helper = False

    async def mutate(self, parents: Sequence[Probe], ctx: MutationContext) -> list[Probe]:
        """One child with a framing; none when the parent already has one."""
        return wrap(parents, ctx, self.name, load_framings(ctx.corpora).refusal_triggers)
