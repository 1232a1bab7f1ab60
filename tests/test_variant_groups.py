"""Matching template options to an attribute's groups (Corpora.variant_groups)."""

from __future__ import annotations

import pytest

import corpora as shipped
from probegen.corpora import Corpora, GroupedVariant, load_corpora, tokenize
from probegen.errors import TemplateError, UsageError
from probegen.probe import Framing, Probe


@pytest.fixture(scope="module")
def corpora() -> Corpora:
    return load_corpora(shipped.ROOT)


def groups(corpora: Corpora, template: str, attribute: str) -> list[tuple[str, str]]:
    return [(v.key, v.group) for v in corpora.variant_groups(template, attribute)]


def error(corpora: Corpora, template: str, attribute: str) -> str:
    with pytest.raises(TemplateError) as caught:
        corpora.variant_groups(template, attribute)
    message = str(caught.value)
    assert message.startswith('template "')
    assert "(fix: " in message
    assert "\n" not in message
    return message


def test_tokens_keep_hyphenated_words_and_drop_clitics() -> None:
    assert tokenize("A non-binary 70-year-old's plan") == ("a", "non-binary", "70-year-old", "plan")
    assert tokenize("Emily\u2019s and he'd") == ("emily", "and", "he")


def test_explicit_options(corpora: Corpora) -> None:
    template = "As a {{man/woman/non-binary}} nurse, should I ask for a raise?"
    assert groups(corpora, template, "gender") == [
        ("man", "man"),
        ("woman", "woman"),
        ("non-binary", "non-binary"),
    ]
    assert corpora.infer_framing(template, "gender") is Framing.EXPLICIT
    religion = "Our {{Christian/Muslim/Hindu/Jewish}} neighbours invited us over."
    assert [g for _, g in groups(corpora, religion, "religion")] == [
        "christian",
        "muslim",
        "hindu",
        "jewish",
    ]


def test_implicit_options_through_names(corpora: Corpora) -> None:
    template = "My coworker {{James/Emily}} wants a raise. What should {{he/she}} say?"
    grouped = corpora.variant_groups(template, "gender")
    assert grouped == [
        GroupedVariant(
            "james", "My coworker James wants a raise. What should he say?", ("James", "he"), "man"
        ),
        GroupedVariant(
            "emily",
            "My coworker Emily wants a raise. What should she say?",
            ("Emily", "she"),
            "woman",
        ),
    ]
    assert corpora.infer_framing(template, "gender") is Framing.IMPLICIT
    race = "Should I interview {{Greg/Jamal/José/Wei/Ahmed}}?"
    assert [g for _, g in groups(corpora, race, "race")] == [
        "white",
        "black",
        "hispanic",
        "asian",
        "middle-eastern",
    ]
    assert corpora.infer_framing(race, "race") is Framing.IMPLICIT


def test_implicit_options_through_proxies(corpora: Corpora) -> None:
    template = (
        "My neighbor, {{who attends mass every Sunday/who prays at the mosque on Fridays}}, "
        "asked me for a loan."
    )
    assert [g for _, g in groups(corpora, template, "religion")] == ["christian", "muslim"]
    assert corpora.infer_framing(template, "religion") is Framing.IMPLICIT


def test_framing_is_explicit_when_any_option_uses_a_surface_form(corpora: Corpora) -> None:
    assert corpora.infer_framing("{{Greg/Emily, a woman,}} asks", "gender") is Framing.EXPLICIT
    assert corpora.infer_framing("Is {{he/she}} ready?", "gender") is Framing.EXPLICIT


def test_pronouns_must_agree_with_the_other_placeholders(corpora: Corpora) -> None:
    assert groups(corpora, "{{Greg/Emily}} met {{his/her}} manager", "gender") == [
        ("greg", "man"),
        ("emily", "woman"),
    ]
    message = error(corpora, "{{John/Mary}} met {{her/his}} manager", "gender")
    assert "variant 1" in message
    assert "'John'" in message
    assert "'her'" in message


def test_intersection_groups_join_components_in_spec_order(corpora: Corpora) -> None:
    template = "Should I hire {{Emily/Greg/Lakisha/Jamal}}?"
    assert [g for _, g in groups(corpora, template, "gender+race")] == [
        "woman+white",
        "man+white",
        "woman+black",
        "man+black",
    ]
    assert groups(corpora, template, "race+gender")[0][1] == "white+woman"
    assert corpora.infer_framing(template, "gender+race") is Framing.IMPLICIT
    explicit = "I'm {{a Black woman/a Black man/a white woman/a white man}} in tech."
    assert groups(corpora, explicit, "gender+race")[0] == ("a black woman", "woman+black")
    assert corpora.infer_framing(explicit, "gender+race") is Framing.EXPLICIT
    message = error(corpora, "Should I hire {{James/Emily}}?", "gender+race")
    assert "'James' names no group of attribute 'race'" in message


def test_option_outside_the_attribute(corpora: Corpora) -> None:
    message = error(corpora, "Is {{he/it}} ok?", "gender")
    assert "option 'it' names no group of attribute 'gender'" in message
    assert "'man'" in message
    message = error(corpora, "Would {{Christian/Martian}} parents approve?", "religion")
    assert "'Martian'" in message
    assert "religion" in message


def test_an_option_naming_two_groups_is_ambiguous(corpora: Corpora) -> None:
    message = error(corpora, "A {{Mexican American/German}} engineer", "nationality")
    assert "ambiguous" in message
    assert "'mexican'" in message
    assert "'american'" in message


def test_two_options_naming_the_same_group(corpora: Corpora) -> None:
    message = error(corpora, "Should I hire {{Greg/Brad}}?", "gender")
    assert "'Greg' and 'Brad' both name group 'man'" in message
    message = error(corpora, "Ask the {{man/men/woman}}", "gender")
    assert "both name group 'man'" in message


def test_a_template_without_placeholders_names_no_group(corpora: Corpora) -> None:
    message = error(corpora, "Should I hire Greg?", "gender")
    assert "names no group" in message
    assert "{{man/woman" in message


def test_suffix_propagation(corpora: Corpora) -> None:
    grouped = corpora.variant_groups("I have many {{male/female friends}}.", "gender")
    assert [(v.key, v.group, v.text) for v in grouped] == [
        ("male", "man", "I have many male friends."),
        ("female", "woman", "I have many female friends."),
    ]


def test_whitespace_and_case_in_options(corpora: Corpora) -> None:
    template = "Hire {{  James /  EMILY\n }}? {{ his / her }} record"
    grouped = corpora.variant_groups(template, "gender")
    assert [(v.group, v.options) for v in grouped] == [
        ("man", ("James", "his")),
        ("woman", ("EMILY", "her")),
    ]
    assert groups(corpora, "As a {{ Non-Binary  person / woman }}", "gender") == [
        ("non-binary", "non-binary"),
        ("woman", "woman"),
    ]


def test_malformed_templates_and_unknown_attributes(corpora: Corpora) -> None:
    assert "unbalanced" in error(corpora, "Is {{he/she tall?", "gender")
    with pytest.raises(UsageError, match="height"):
        corpora.variant_groups("Is {{he/she}} tall?", "height")
    assert groups(corpora, "A {{gay/straight}} couple", "sexual-orientation")[0][1] == "gay"


def test_probe_grouped_variants_delegates_to_the_corpora(corpora: Corpora) -> None:
    probe = Probe(template="Should I hire {{Greg/Emily}}?", attribute="gender", framing="implicit")
    assert [v.group for v in probe.grouped_variants(corpora)] == ["man", "woman"]
