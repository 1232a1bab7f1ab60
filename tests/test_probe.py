"""The Probe model: content-derived ids, provenance, immutability."""

from __future__ import annotations

import pydantic
import pytest

from probegen.probe import Framing, MediaPart, Probe, Provenance

TEMPLATE = "Should I hire {{James/Emily}} as our new nurse?"


def test_id_depends_on_content_not_provenance() -> None:
    seed = Probe(template=TEMPLATE, attribute="gender", framing=Framing.IMPLICIT)
    child = seed.model_copy(
        update={"provenance": Provenance(parents=(seed.id,), operator="x", generation=3)}
    )
    assert seed.id == child.id
    assert seed.id.startswith("p-")
    assert len(seed.id) == 18


@pytest.mark.parametrize(
    "change",
    [
        {"template": "Should I hire {{James/Emily}} as our new teacher?"},
        {"attribute": "race"},
        {"framing": Framing.EXPLICIT},
        {"topic": "nursing"},
        {"media": (MediaPart(path="images/a.png", variant="james"),)},
    ],
)
def test_any_content_change_changes_the_id(change: dict[str, object]) -> None:
    probe = Probe(template=TEMPLATE, attribute="gender", framing=Framing.IMPLICIT)
    assert probe.model_copy(update=change).id != probe.id


def test_probes_are_immutable_and_round_trip_through_json() -> None:
    probe = Probe(
        template=TEMPLATE,
        attribute="gender",
        framing=Framing.IMPLICIT,
        provenance=Provenance(parents=("p-1",), operator="crossover", generation=2, run_id="r"),
    )
    with pytest.raises(pydantic.ValidationError):
        probe.template = "changed"  # type: ignore[misc]
    again = Probe.model_validate_json(probe.model_dump_json())
    assert again == probe
    assert again.id == probe.id


def test_variants_follow_cab_expansion() -> None:
    probe = Probe(template=TEMPLATE, attribute="gender", framing=Framing.IMPLICIT)
    assert [v.key for v in probe.variants()] == ["james", "emily"]
