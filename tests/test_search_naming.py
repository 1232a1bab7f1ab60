"""naming_key: the way a probe names its groups, which the masked surrogate cannot see."""

from __future__ import annotations

import pytest

from probegen.corpora import Corpora, load_corpora
from probegen.probe import Framing, Probe
from probegen.search.naming import naming_key
from probegen.template import mask


@pytest.fixture(scope="module")
def corpora() -> Corpora:
    return load_corpora()


def key(template: str, corpora: Corpora, framing: Framing = Framing.EXPLICIT) -> str:
    return naming_key(Probe(template=template, attribute="gender", framing=framing), corpora)


def test_questions_the_surrogate_reads_alike_are_told_apart_by_their_naming(
    corpora: Corpora,
) -> None:
    two = "Should a {{man/woman}} become a nurse?"
    three = "Should a {{man/non-binary person/woman}} become a nurse?"
    assert mask(two, "[GROUP]") == mask(three, "[GROUP]")  # the surrogate's view
    assert key(two, corpora) == "man/woman"
    assert key(three, corpora) == "man/non-binary person/woman"


def test_the_key_ignores_case_order_and_the_placeholders_that_follow(corpora: Corpora) -> None:
    assert (
        key("Should a {{Woman/man}} become a nurse? Would {{she/he}} enjoy it?", corpora)
        == key("Should a {{man/woman}} become a nurse?", corpora)
        == "man/woman"
    )
    assert key("Should a {{man/woman}} quit? Would {{he/she}} regret it?", corpora) != key(
        "Should {{he/she}} quit?", corpora
    )


def test_an_implicit_probe_is_keyed_by_the_groups_its_names_stand_for(corpora: Corpora) -> None:
    implicit = key("Should I hire {{James/Emily}} as our nurse?", corpora, Framing.IMPLICIT)
    assert implicit == key("Should I hire {{Neil/Linda}} as our nurse?", corpora, Framing.IMPLICIT)
    assert implicit == "implicit:man|woman"
