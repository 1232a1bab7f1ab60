"""The prompts of a decision measurement: several names per group, several wordings.

An implicit probe is measured over several first names per group (drawn in balanced
rounds by :mod:`probegen.corpora.name_rounds`: the probe's own names first, then other
names of the same groups), each with several instruction wordings, so an effect is
tested against the spread *between names of one group*. Replication uses rounds and
wordings discovery did not. An explicit probe ("a man"/"a woman") has no names to
vary; its units are instruction wordings, disjoint between discovery and replication.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

import corpora as shipped_corpora
from probegen.corpora import Corpora
from probegen.corpora.name_rounds import balanced_rounds, name_slots, rename
from probegen.decision.form import decision_body
from probegen.errors import CorpusError
from probegen.probe import Probe

__all__ = [
    "DECISION_FILE",
    "DecisionCorpus",
    "Phase",
    "Unit",
    "load_decision_corpus",
    "plan_units",
]

DECISION_FILE = "decision.yaml"
Phase = Literal["screen", "confirm", "replication"]
"""A measurement's phase. A probe is *screened* on its own names and a few more;
a promising one is *confirmed* on fresh names (the test that counts); a finding is
*replicated* on names and wordings neither used."""


class DecisionCorpus(BaseModel):
    """``corpora/decision.yaml``: instructions and the words read as yes and no."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    instructions: tuple[str, ...] = Field(min_length=2)
    yes: tuple[str, ...] = Field(min_length=1)
    no: tuple[str, ...] = Field(min_length=1)
    min_mass: float = Field(0.2, ge=0.0, le=1.0)

    def for_phase(self, phase: Phase) -> tuple[str, ...]:
        """The instructions of one phase: the first half discovers (screen and confirm),
        the second replicates."""
        half = len(self.instructions) // 2
        return self.instructions[half:] if phase == "replication" else self.instructions[:half]

    def offset(self, phase: Phase) -> int:
        """Index in :attr:`instructions` of the phase's first wording."""
        return len(self.instructions) // 2 if phase == "replication" else 0


def load_decision_corpus(corpora: Corpora) -> DecisionCorpus:
    """The corpora's ``decision.yaml``, or the shipped one when a custom corpora
    directory has none.

    Raises:
        CorpusError: The file is unreadable or invalid; the message names it.
    """
    path = corpora.root / DECISION_FILE
    if not path.is_file():
        path = shipped_corpora.ROOT / DECISION_FILE
    return _load(path)


@lru_cache(maxsize=8)
def _load(path: Path) -> DecisionCorpus:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        return DecisionCorpus.model_validate(data)
    except (OSError, yaml.YAMLError) as error:
        raise CorpusError(f"{path}: cannot read ({error})", fix="restore the file") from None
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise CorpusError(
            f"{path}: field '{where}': {first['msg']}",
            fix="follow the format of the shipped corpora/decision.yaml",
        ) from None


@dataclass(frozen=True)
class Unit:
    """One prompt of a decision measurement.

    Attributes:
        variant_key: The probe variant it stands for.
        group: The group that variant names.
        label: What stands for the group here: a first name, or for an explicit probe
            the variant's own wording.
        instruction: Index of the instruction wording in ``decision.yaml``.
        text: The prompt sent: the question, then the instruction.
        round: The round it belongs to: the units of one round (one per group) share
            their wording and the stratum their names were drawn from, so the groups
            are compared within rounds.
    """

    variant_key: str
    group: str
    label: str
    instruction: int
    text: str
    round: str = ""


def plan_units(
    probe: Probe,
    corpora: Corpora,
    *,
    phase: Phase,
    screen: int,
    rounds: int,
    instructions: int = 1,
) -> list[Unit]:
    """The prompts that measure ``probe`` in ``phase``; empty when it is not measurable
    (or, for an explicit probe, when the phase has no wordings of its own).

    Rounds of names are sliced so phases never share a name: the screen takes the
    probe's own names and ``screen - 1`` more rounds, confirmation the next ``rounds``,
    replication the ``rounds`` after those (fewer when the corpora run out of names).
    An explicit probe has no names to vary: its screen asks every discovery wording, it
    has no confirmation, and replication asks the other wordings.

    Args:
        probe: A probe whose last question is a yes/no question (see
            :func:`~probegen.decision.form.decision_body`).
        corpora: Names and the decision instructions.
        phase: ``screen``, ``confirm`` or ``replication``.
        screen: Rounds in the screen (the probe's own names count as one).
        rounds: Rounds in confirmation and in replication.
        instructions: Instruction wordings per name; they rotate over the rounds, so
            even one per name spreads over all of the phase's wordings.
    """
    body = decision_body(probe.template)
    if body is None or probe.media:
        return []
    corpus = load_decision_corpus(corpora)
    wordings = corpus.for_phase(phase)
    offset = corpus.offset(phase)
    variants = corpora.variant_groups(body, probe.attribute)
    slots = name_slots(body, probe.attribute, corpora)
    units: list[Unit] = []
    if slots is None:
        if phase == "confirm":
            return []
        for variant in variants:
            for index, wording in enumerate(wordings):
                label = f"wording {offset + index + 1}"
                units.append(
                    Unit(
                        variant.key,
                        variant.group,
                        label,
                        offset + index,
                        f"{variant.text} {wording}",
                        round=label,
                    )
                )
        return units
    others = balanced_rounds(slots, probe.attribute, corpora, seed=probe.id)
    own = {k: name for k, (_, name) in slots.items()}
    chosen = {
        "screen": [own, *others[: screen - 1]],
        "confirm": others[screen - 1 : screen - 1 + rounds],
        "replication": others[screen - 1 + rounds : screen - 1 + 2 * rounds],
    }[phase]
    per_name = min(instructions, len(wordings))
    for position, names in enumerate(chosen):
        # Wordings rotate over the rounds (the same for every group in a round), so with
        # one wording per name the wording quirks still average out over the names.
        picked = [(position * per_name + j) % len(wordings) for j in range(per_name)]
        for variant in variants:
            text = rename(variant.text, slots[variant.key][1], names[variant.key])
            for index in picked:
                units.append(
                    Unit(
                        variant.key,
                        variant.group,
                        names[variant.key],
                        offset + index,
                        f"{text} {wordings[index]}",
                        round=f"{phase} round {position + 1}",
                    )
                )
    return units
