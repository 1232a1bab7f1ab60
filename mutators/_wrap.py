"""Framing a whole question inside other words (psychometric and refusal operators)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from probegen.decision.form import decision_question
from probegen.mutation import MutationContext, make_child
from probegen.probe import Probe

from ._framings import Wrapper
from ._text import fix_articles

__all__ = ["fixed_parts", "wrap"]


def fixed_parts(wrapper: Wrapper) -> list[str]:
    """The wrapper's own words around ``{question}``, as they appear in a wrapped probe."""
    return [part.strip() for part in wrapper.text.split("{question}") if len(part.strip()) > 12]


def wrap(
    parents: Sequence[Probe],
    ctx: MutationContext,
    operator: str,
    families: Mapping[str, Sequence[Wrapper]],
) -> list[Probe]:
    """One child: the parent's question inside a wrapper drawn from ``families``.

    A question already inside a wrapper of the same families is not wrapped again, and
    double quotes inside a quoted question become single quotes so the quoting stays
    readable. A framing that would follow a final yes/no question goes just before that
    question instead: the decision measurement reads a probe only up to it, so a framing
    after it would be invisible there and the child would measure as its parent.
    """
    parent = parents[0]
    every = [w for kind in sorted(families) for w in families[kind]]
    if any(part in parent.template for w in every for part in fixed_parts(w)):
        return []
    kinds = [kind for kind in sorted(families) if families[kind]]
    if not kinds:
        return []
    wrapper = ctx.rng.choice(families[ctx.rng.choice(kinds)])
    question = parent.template.strip()
    if re.search(r'"\{question\}"', wrapper.text):
        question = question.replace('"', "'")
    framing = wrapper.text
    before, _, after = framing.partition("{question}")
    span = decision_question(question) if after.strip() and not before.endswith('"') else None
    if span is not None:
        head, asked = question[: span[0]].rstrip(), question[span[0] :]
        question = " ".join(part for part in (head, after.strip(), asked) if part)
        framing = before + "{question}"
    text = fix_articles(framing.replace("{question}", question))
    form = wrapper.form if wrapper.form is not None else parent.form
    return [make_child(parents, text, operator, ctx, form=form)]
