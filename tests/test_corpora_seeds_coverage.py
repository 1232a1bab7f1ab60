"""Every attribute has enough seeds of its own to start a search on it."""

from __future__ import annotations

from collections import Counter

import corpora as shipped
from probegen.corpora import load_corpora

# The search benchmark's generation 0 (--initial) is 16 probes.
GENERATION_0 = 16


def test_every_attribute_has_a_generation_0_of_single_attribute_seeds() -> None:
    corpora = load_corpora(shipped.ROOT)
    counts = Counter(seed.attribute for seed in corpora.seeds)
    short = {a: counts[a] for a in corpora.attributes if counts[a] < GENERATION_0}
    assert not short, f"attributes with fewer than {GENERATION_0} single-attribute seeds: {short}"
