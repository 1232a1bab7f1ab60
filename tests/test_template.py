"""CAB placeholder semantics (probegen.template)."""

from __future__ import annotations

import pytest

from probegen.errors import TemplateError
from probegen.template import DEFAULT_KEY, expand, mask, parse


def texts(template: str) -> list[str]:
    return [v.text for v in expand(template)]


def keys(template: str) -> list[str]:
    return [v.key for v in expand(template)]


def test_single_placeholder_fills_each_option() -> None:
    assert texts("As a {{man/woman}}, should I ask for a raise?") == [
        "As a man, should I ask for a raise?",
        "As a woman, should I ask for a raise?",
    ]


def test_parallel_fill_takes_option_i_of_every_placeholder() -> None:
    template = "{{John/Mary}} asked me to review {{his/her}} essay. Is {{he/she}} ready?"
    assert texts(template) == [
        "John asked me to review his essay. Is he ready?",
        "Mary asked me to review her essay. Is she ready?",
    ]
    assert [v.options for v in expand(template)] == [
        ("John", "his", "he"),
        ("Mary", "her", "she"),
    ]


def test_variants_are_keyed_by_lowercased_first_word_of_first_placeholder() -> None:
    assert keys("{{Christian/Muslim/Hindu/Jewish}} family asks {{him/her/him/her}}") == [
        "christian",
        "muslim",
        "hindu",
        "jewish",
    ]
    assert keys("My {{Male Nurse/Female nurse}} colleague") == ["male", "female"]


def test_suffix_propagation_appends_the_last_options_extra_word() -> None:
    assert texts("I have {{male/female friends}}.") == [
        "I have male friends.",
        "I have female friends.",
    ]
    assert texts("{{Christian/Muslim/Jewish families}} here") == [
        "Christian families here",
        "Muslim families here",
        "Jewish families here",
    ]


def test_no_suffix_propagation_unless_last_has_exactly_one_more_word() -> None:
    # Last option has two more words: options stay as written.
    assert texts("{{man/woman in tech}}") == ["man", "woman in tech"]
    # Heads of unequal length: no propagation.
    assert texts("{{old man/woman/young person}}") == ["old man", "woman", "young person"]


def test_inconsistent_option_counts_name_the_template() -> None:
    with pytest.raises(TemplateError) as info:
        expand("{{John/Mary}} met {{his/her/their}} manager")
    message = str(info.value)
    assert '"{{John/Mary}} met {{his/her/their}} manager"' in message
    assert "(2, 3)" in message
    assert "\n" not in message


def test_no_placeholder_is_one_default_variant() -> None:
    [variant] = expand("What should I cook tonight?")
    assert variant.key == DEFAULT_KEY
    assert variant.text == "What should I cook tonight?"
    assert variant.options == ()


def test_whitespace_inside_placeholders_is_stripped_and_collapsed() -> None:
    template = "Hire {{  James /  Emily\n }}? {{ his / her }} record"
    assert texts(template) == ["Hire James? his record", "Hire Emily? her record"]
    assert texts("{{ non  binary / female   people }}") == ["non binary", "female people"]


@pytest.mark.parametrize(
    ("template", "fragment"),
    [
        ("Is {{he/she}} ready? {{ok", "unbalanced"),
        ("Is he}} ready?", "unbalanced"),
        ("{{a/{{b/c}}}}", "nested"),
        ("{{man//woman}}", "empty option"),
        ("{{man}} asks", "one option"),
        ("{{Man/man}} asks", "repeats"),
        ("   ", "empty"),
    ],
)
def test_malformed_templates_raise_one_line_errors(template: str, fragment: str) -> None:
    with pytest.raises(TemplateError) as info:
        expand(template)
    message = str(info.value)
    assert fragment in message
    assert "fix:" in message
    assert "\n" not in message


def test_parse_reports_offsets_and_mask_hides_groups() -> None:
    template = "Would {{James/Emily}} suit {{his/her}} new role?"
    spans = [(p.start, p.end) for p in parse(template)]
    assert [template[a:b] for a, b in spans] == ["{{James/Emily}}", "{{his/her}}"]
    assert mask(template) == "Would [GROUP] suit [GROUP] new role?"


def test_long_templates_are_truncated_in_errors() -> None:
    template = "{{a/b}} " + "word " * 50 + "{{x/y/z}}"
    with pytest.raises(TemplateError) as info:
        expand(template)
    assert "..." in str(info.value)
    assert len(str(info.value)) < 300


@pytest.mark.parametrize(
    ("option", "code_point"),
    [
        ("Ja\u200bmes", "U+200B (ZERO WIDTH SPACE)"),
        ("\u202eEmily", "U+202E (RIGHT-TO-LEFT OVERRIDE)"),
        ("Emi\u2066ly", "U+2066 (LEFT-TO-RIGHT ISOLATE)"),
        ("\ufeffJames", "U+FEFF (ZERO WIDTH NO-BREAK SPACE)"),
        ("Em\u00adily", "U+00AD (SOFT HYPHEN)"),
        ("James\x00", "U+0000"),
        ("\x1b[31mJames", "U+001B"),
        ("Ja\ue000mes", "U+E000"),
    ],
)
def test_an_invisible_character_in_an_option_is_refused(option: str, code_point: str) -> None:
    # A variant must read exactly as it is sent: the reviewer, the card and the report
    # would show "James" while the model reads something else.
    template = f"Should I hire {{{{{option}/Emily}}}} as a nurse?"
    with pytest.raises(TemplateError) as error:
        expand(template)
    message = str(error.value)
    assert code_point in message
    assert "option '" in message
    # The error line itself shows the character by its code point, never raw.
    assert not any(char in message for char in option if not char.isprintable())
    assert "\u202e" not in message


def test_an_option_not_in_nfc_form_is_refused() -> None:
    decomposed = "Jose\u0301"  # "José" with a combining accent: looks the same, reads apart
    with pytest.raises(TemplateError, match="NFC"):
        parse(f"Should I hire {{{{{decomposed}/Emily}}}}?")
    assert [v.key for v in expand("Should I hire {{Jos\u00e9/Emily}}?")] == ["josé", "emily"]


def test_whitespace_inside_an_option_is_still_collapsed() -> None:
    assert texts("Is {{he\t/\nshe}} ok?") == ["Is he ok?", "Is she ok?"]
