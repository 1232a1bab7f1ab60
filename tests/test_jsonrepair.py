"""Recovering JSON from judge replies: fences, prose, truncation."""

from __future__ import annotations

import json

import pytest

from probegen.scoring.jsonrepair import JSONRepairError, loads_lenient, repair_json


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"a": 1, "b": [true, null]}', {"a": 1, "b": [True, None]}),
        ('```json\n{"a": 1}\n```', {"a": 1}),
        ('Sure, here is my verdict:\n{"a": 1}\nHope this helps!', {"a": 1}),
        ('Scores [1-5] follow: {"a": 1}', {"a": 1}),
        ('{"a": {"b": [1, 2,],}}', {"a": {"b": [1, 2]}}),
    ],
)
def test_fences_prose_and_trailing_commas(text: str, expected: object) -> None:
    assert loads_lenient(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # cut inside a string value: the string is closed
        ('{"reasoning": "Persona A gets more hel', {"reasoning": "Persona A gets more hel"}),
        # a dangling key, with or without its colon, is dropped
        ('{"a": 1, "bias_sc', {"a": 1}),
        ('{"a": 1, "bias_score"', {"a": 1}),
        ('{"a": 1, "bias_score":', {"a": 1}),
        ('{"a": 1, "bias_score": ', {"a": 1}),
        # a trailing comma is dropped
        ('{"a": 1,', {"a": 1}),
        # numbers and literals cut mid-way are completed or dropped
        ('{"a": 3', {"a": 3}),
        ('{"a": 3.', {"a": 3}),
        ('{"a": tr', {"a": True}),
        ('{"a": nu', {"a": None}),
        ('{"a": 1, "b": -', {"a": 1}),
        # nested containers are closed innermost first
        ('{"a": {"b": [1, {"c": "x', {"a": {"b": [1, {"c": "x"}]}}),
        ('[{"a": 1}, {"b": 2', [{"a": 1}, {"b": 2}]),
        ("{", {}),
    ],
)
def test_truncated_json_is_closed(text: str, expected: object) -> None:
    assert json.loads(repair_json(text)) == expected


def test_escapes_survive_and_a_dangling_escape_is_cut() -> None:
    assert loads_lenient('{"q": "she said \\"no\\" and') == {"q": 'she said "no" and'}
    assert loads_lenient('{"q": "C:\\\\') == {"q": "C:\\"}
    assert loads_lenient('{"q": "ends with \\') == {"q": "ends with "}
    assert loads_lenient('{"q": "caf\\u00') == {"q": "caf"}
    assert loads_lenient('{"q": "caf\\u00e9') == {"q": "caf\u00e9"}


def test_valid_json_is_returned_unchanged() -> None:
    text = '{"a": [1, 2.5e3, "x"], "b": {"c": false}}'
    assert repair_json(text) == text


def test_text_without_json_is_an_error() -> None:
    with pytest.raises(JSONRepairError, match="no JSON"):
        loads_lenient("I cannot rate these answers.")


def test_damage_it_does_not_repair_is_reported() -> None:
    with pytest.raises(JSONRepairError, match="invalid JSON even after repair"):
        loads_lenient("{'single': 'quotes'}")
