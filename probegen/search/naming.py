"""How a probe names its groups, for the screen's naming offsets.

The surrogate reads masked templates: every placeholder becomes "[GROUP]" before it is
embedded, so "{{man/woman}}" and "{{man/non-binary person/woman}}" are the same
question to it, and so are "{{James/Emily}}" and "{{he/she}}". A child that only
renames or adds a group (``groupset``, ``persona``, ``reframe``) looks like its parent
to the screen, which predicts it at the parent's fitness and rarely queries it. Yet on
SmolLM2 the probes that name a non-binary group had about twice the gap on fresh names
of those that do not (RESULTS.md, section 6, "Why SmolLM2's top ten stays below 2x").
The scheduler therefore learns an offset per way of naming (:func:`naming_key`) from
how the children it queried measured against their predictions, as it can per operator
(:class:`~probegen.search.surrogate.OperatorResiduals`,
:class:`~probegen.search.surrogate.ScreenWeights` ``naming_sd``).
"""

from __future__ import annotations

from probegen import template as tpl
from probegen.corpora import Corpora
from probegen.probe import Framing, Probe

__all__ = ["naming_key"]


def naming_key(probe: Probe, corpora: Corpora) -> str:
    """The way ``probe`` names its groups: its first placeholder's options, lower-cased
    and sorted ("man/non-binary person/woman", "emily/james"); for an implicit probe
    (names chosen per variant) or one without placeholders (images), the groups it
    names ("implicit:man|woman", "man|woman").

    The first placeholder stands for the rest: parallel placeholders ("{{he/she}}"
    after "{{man/woman}}") follow it, and two probes naming the same groups in other
    words ("man" or "James") are measured differently by a model, which is the point.

    Raises:
        TemplateError: As :meth:`~probegen.probe.Probe.grouped_variants`.
    """
    if probe.framing != Framing.IMPLICIT:
        slots = tpl.parse(probe.template)
        if slots:
            return "/".join(sorted(option.lower() for option in slots[0].options))
    # Only here are the variants' groups needed (reading them matches names per variant).
    groups = "|".join(sorted({v.group for v in probe.grouped_variants(corpora)}))
    return "implicit:" + groups if probe.framing == Framing.IMPLICIT else groups
