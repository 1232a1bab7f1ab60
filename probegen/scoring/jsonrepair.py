"""Recover a JSON value from an LLM's reply: fences, surrounding prose, truncation.

Judges often wrap their JSON in a Markdown code fence, put a sentence before or after it,
or stop mid-way when they hit ``max_tokens``. :func:`repair_json` turns such a reply into
text that :func:`json.loads` accepts whenever a sensible prefix of the value exists:

- everything before the first ``{`` or ``[`` and after the value closes is dropped
  (this removes code fences and prose);
- a string cut off mid-way is closed (a dangling ``\\`` or partial ``\\u`` escape is
  dropped first);
- a number or literal cut off mid-way is completed (``tru`` -> ``true``) or dropped;
- a dangling key (``{"a": 1, "b"`` or ``{"a": 1, "b":``) and a trailing comma are
  dropped;
- trailing commas before a closing bracket (``[1, 2,]``) are removed;
- every container still open is closed, innermost first.

It does not guess at anything else (single quotes, comments, unquoted keys): such text is
returned as scanned and :func:`loads_lenient` reports the parse error.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

__all__ = ["JSONRepairError", "loads_lenient", "repair_json"]

_CLOSERS = {"{": "}", "[": "]"}
_LITERALS = ("true", "false", "null")
_NUMBER = re.compile(r"-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?")
_TOKEN_CHARS = set("0123456789+-.eEtrufalsn")
_MAX_STARTS = 4


class JSONRepairError(ValueError):
    """No JSON value could be recovered from the text."""


@dataclass
class _Container:
    opener: str
    # Object slots cycle key -> colon -> value -> comma; arrays use value -> comma.
    expect: str = "value"


@dataclass
class _Scan:
    out: list[str] = field(default_factory=list)
    stack: list[_Container] = field(default_factory=list)
    # The longest prefix of ``out`` (and the stack at that point) that becomes valid
    # JSON by closing the open containers: where a truncated reply is cut back to.
    safe_len: int = 0
    safe_stack: list[str] = field(default_factory=list)
    done: bool = False

    def mark_safe(self) -> None:
        self.safe_len = len(self.out)
        self.safe_stack = [c.opener for c in self.stack]

    def value_done(self) -> None:
        if not self.stack:
            self.done = True
            return
        self.stack[-1].expect = "comma"
        self.mark_safe()


def _closers(openers: list[str]) -> str:
    return "".join(_CLOSERS[o] for o in reversed(openers))


def _complete_token(token: str) -> str | None:
    """A complete JSON number/literal from a possibly truncated one, or None."""
    for literal in _LITERALS:
        if literal.startswith(token):
            return literal
    match = _NUMBER.match(token)
    if match is None:
        return None
    # Keep the longest valid number prefix: "3." -> "3", "1e" -> "1".
    return match.group(0)


def repair_json(text: str) -> str:
    """Return ``text`` cut down and closed into parseable JSON, as well as possible.

    Args:
        text: An LLM reply that should contain one JSON object or array.

    Returns:
        The recovered JSON text (not guaranteed valid when the damage is of a kind this
        module does not repair; :func:`loads_lenient` reports that).

    Raises:
        JSONRepairError: The text contains no ``{`` or ``[`` at all.
    """
    starts = [i for i in (text.find("{"), text.find("[")) if i >= 0]
    if not starts:
        raise JSONRepairError("no JSON object or array in the text")
    scan = _Scan()
    i, n = min(starts), len(text)
    while i < n and not scan.done:
        char = text[i]
        top = scan.stack[-1] if scan.stack else None
        if char.isspace():
            scan.out.append(char)
            i += 1
        elif char == '"':
            end = _string_end(text, i)
            if end is None:
                return _close_truncated_string(scan, text[i:])
            scan.out.append(text[i:end])
            i = end
            if top is not None and top.opener == "{" and top.expect == "key":
                top.expect = "colon"
            else:
                scan.value_done()
        elif char in _CLOSERS:
            scan.out.append(char)
            scan.stack.append(_Container(char, "key" if char == "{" else "value"))
            scan.mark_safe()
            i += 1
        elif char in "}]":
            _drop_trailing_comma(scan.out)
            if top is None or _CLOSERS[top.opener] != char:
                return "".join(scan.out) + text[i:]  # mismatched: the parser reports it
            scan.stack.pop()
            scan.out.append(char)
            i += 1
            scan.value_done()
        elif char == ",":
            scan.out.append(char)
            if top is not None:
                top.expect = "key" if top.opener == "{" else "value"
            i += 1
        elif char == ":":
            scan.out.append(char)
            if top is not None:
                top.expect = "value"
            i += 1
        elif char in _TOKEN_CHARS:
            j = i
            while j < n and text[j] in _TOKEN_CHARS:
                j += 1
            token = text[i:j]
            completed = _complete_token(token)
            if j == n:  # cut off mid-token: complete it or fall back to the last safe point
                if completed is None:
                    break
                token = completed
            elif completed != token:
                return "".join(scan.out) + text[i:]  # a bad token mid-text: not ours to fix
            scan.out.append(token)
            i = j
            scan.value_done()
        else:
            # Not JSON (single quotes, comments, prose inside the value). Only damage at
            # the end is repaired; this is left for the parser to report where it is.
            return "".join(scan.out) + text[i:]
    if scan.done or not scan.stack:
        return "".join(scan.out).strip()
    return "".join(scan.out[: scan.safe_len]).rstrip().rstrip(",") + _closers(scan.safe_stack)


def _string_end(text: str, start: int) -> int | None:
    """Index just past the closing quote of the string opening at ``start``, or None."""
    i = start + 1
    while i < len(text):
        if text[i] == "\\":
            i += 2
        elif text[i] == '"':
            return i + 1
        else:
            i += 1
    return None


def _close_truncated_string(scan: _Scan, fragment: str) -> str:
    top = scan.stack[-1] if scan.stack else None
    if top is not None and top.opener == "{" and top.expect == "key":
        # A key without its value carries nothing: cut back to before it.
        return "".join(scan.out[: scan.safe_len]).rstrip().rstrip(",") + _closers(scan.safe_stack)
    # Cut a dangling escape (a lone backslash, a partial \u0041) so that the quote we add
    # is not itself escaped.
    i, cut = 1, len(fragment)
    while i < len(fragment):
        if fragment[i] == "\\":
            width = 6 if fragment[i + 1 : i + 2] == "u" else 2
            if i + width > len(fragment):
                cut = i
                break
            i += width
        else:
            i += 1
    fragment = fragment[:cut]
    openers = [c.opener for c in scan.stack]
    return "".join(scan.out) + fragment + '"' + _closers(openers)


def _drop_trailing_comma(out: list[str]) -> None:
    for index in range(len(out) - 1, -1, -1):
        if out[index].isspace():
            continue
        if out[index] == ",":
            del out[index]
        return


def loads_lenient(text: str) -> Any:
    """Parse ``text`` as JSON, repairing it with :func:`repair_json` if it is not valid.

    Raises:
        JSONRepairError: Neither the text nor its repair parses; the message says why.
    """
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        pass
    # Prose before the value may itself contain a bracket ("Scores [1-5]: {...}"), so try
    # each of the first few opening brackets as the start of the value.
    starts = [m.start() for m in re.finditer(r"[{\[]", text)][:_MAX_STARTS]
    if not starts:
        raise JSONRepairError("no JSON object or array in the text")
    error: json.JSONDecodeError | None = None
    for start in starts:
        try:
            return json.loads(repair_json(text[start:]))
        except json.JSONDecodeError as caught:
            error = error or caught
    raise JSONRepairError(f"invalid JSON even after repair: {error}")
