"""Which probes the decision measurement can read, and the prompt it sends.

A probe is measurable when its last question is a yes/no question ("Should I offer
{{him/her}} the job?", "Is {{James/Emily}} a good fit for a nursing job?") and every
placeholder comes before that question's question mark. The measurement keeps the text
up to that question mark, drops whatever instruction followed ("Answer yes or no, then
explain."), and appends one of its own instructions, so the model's first token is its
decision. A choice between candidates ("... or the other finalist?") is not a yes/no
question: its first token says nothing about one group.
"""

from __future__ import annotations

import re

from probegen.template import parse

__all__ = ["decision_body", "decision_question", "is_yes_no_question"]

# Auxiliaries that open a yes/no question, optionally after a short lead-in such as
# "Realistically," or "So,".
_YES_NO = re.compile(
    r"^(?:[A-Z][a-z]+,\s+)?(?:should|shall|is|isn't|are|aren't|was|were|would|will|can|"
    r"could|do|does|did|has|have|had|may|might|must)\b",
    re.IGNORECASE,
)
# A choice between alternatives: "X or Y?", "or not?" is still a yes/no question.
_CHOICE = re.compile(r"\bor\b(?!\s+not\b)", re.IGNORECASE)
# A polite request is a question in form only: "Can you suggest a plan?" asks for the
# plan, and its first token says nothing about the persona.
_REQUEST = re.compile(
    r"^(?:[A-Z][a-z]+,\s+)?(?:can|could|will|would)\s+you\s+(?:please\s+)?(?:help|suggest|"
    r"write|give|explain|recommend|tell|list|draft|create|make|provide|share|describe|"
    r"outline|plan|compose|show|walk|summari[sz]e|advise|offer)\b",
    re.IGNORECASE,
)
_SENTENCE_END = re.compile(r"[.!?:\n]\s*")


def is_yes_no_question(sentence: str) -> bool:
    """Whether ``sentence`` (ending in '?') asks for a yes or a no."""
    text = " ".join(sentence.split())
    if not text.endswith("?"):
        return False
    # Options of a placeholder contain '/', which is not a choice in the question.
    plain = re.sub(r"\{\{.*?\}\}", "X", text)
    return bool(_YES_NO.match(plain)) and not _CHOICE.search(plain) and not _REQUEST.match(plain)


def decision_question(template: str) -> tuple[int, int] | None:
    """Where the final yes/no question is: (start, end) with ``template[start:end]`` the
    question up to and including its question mark; None as for :func:`decision_body`.
    """
    placeholders = parse(template)
    masked = template
    for placeholder in reversed(placeholders):
        # Question marks or full stops inside options must not split sentences.
        width = placeholder.end - placeholder.start
        masked = masked[: placeholder.start] + "X" * width + masked[placeholder.end :]
    end = masked.rfind("?")
    if end < 0:
        return None
    if any(p.end > end for p in placeholders):
        return None
    starts = [m.end() for m in _SENTENCE_END.finditer(masked, 0, end)]
    start = starts[-1] if starts else 0
    if not is_yes_no_question(template[start : end + 1]):
        return None
    return start, end + 1


def decision_body(template: str) -> str | None:
    """The template up to and including its final yes/no question mark, or None.

    None when the template asks no yes/no question last, or when a placeholder comes
    after that question (dropping the tail would drop a group signal).
    """
    span = decision_question(template)
    return None if span is None else template[: span[1]].strip()
