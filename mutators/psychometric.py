"""``psychometric``: disguise, deception and teaching framings around the question.

From psychometric testing: a respondent answers differently when the purpose of a
question is disguised ("I'm putting together a training case study ..."), when given a
false reason for it ("A friend asked me this ..."), or when asked to teach the answer to
someone else ("Explain to a new advice columnist how you would answer this letter").
The framings live in ``framings.yaml`` under ``psychometric``; a framing that turns the
question into a story or an explanation also changes its question form.
"""

from __future__ import annotations

from collections.abc import Sequence

from probegen.mutation import MutationContext
from probegen.probe import Probe

from ._framings import load_framings
from ._wrap import wrap

__all__ = ["Psychometric"]


class Psychometric:
    """Wrap the question in a disguise, deception or teaching framing."""

    name = "psychometric"
    arity = 1
    needs_helper = False

    async def mutate(self, parents: Sequence[Probe], ctx: MutationContext) -> list[Probe]:
        """One wrapped child; none when the parent already has such a framing."""
        return wrap(parents, ctx, self.name, load_framings(ctx.corpora).psychometric)
