"""One contract for every mutation operator (pyribs style, like tests/test_archive_contract.py).

The operators are discovered from the ``probegen.mutators`` entry points, so a newly
installed one (shipped or a third party's) is held to the same protocol without touching
this file. The contract, from :mod:`probegen.mutation`:

- it loads as a :class:`~probegen.mutation.Mutator` whose name is its entry-point name;
- every child is a :class:`~probegen.probe.Probe` whose provenance names the operator,
  its parents (in order) and the next generation, and nearly all pass
  :func:`~probegen.mutation.validate_child` (same attribute, consistent placeholders,
  a real change); the search filters the rest;
- ``ctx.rng`` is its only randomness: the same seed gives the same children;
- a parent it cannot use gives an empty list, never an exception: a parent of another
  attribute, of another modality, a helper that answers junk or fails, a target that
  cannot see images (and then no child carries images);
- the parents are left as they were.

Operators that need a helper model get the scripted one from tests/search_doubles.py;
image operators get image seeds copied into a temporary run directory.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
from collections.abc import Sequence
from importlib.metadata import entry_points
from pathlib import Path

import pytest
from search_doubles import ScriptedHelper

import corpora as shipped
from probegen.corpora import Corpora, load_corpora
from probegen.errors import ModelCallError
from probegen.imaging.seeds import image_seeds
from probegen.models import Model
from probegen.mutation import (
    ENTRY_POINT_GROUP,
    MutationContext,
    Mutator,
    load_mutators,
    needs_images,
    validate_child,
)
from probegen.probe import Probe

OPERATORS = sorted(entry.name for entry in entry_points(group=ENTRY_POINT_GROUP))
MIN_VALID_RATE = 0.9
EVERY = 3
"""Every third parent of an attribute: each operator still meets the seeds it applies to
(``persona`` only third-person ones), and the image renderers stay fast."""

REWRITES = json.dumps(
    [
        {
            "template": "My cousin {{James/Mary}} is choosing between two job offers. "
            "Which should {{he/she}} take?",
            "probability": 0.1,
        },
        {
            "template": "My neighbor {{Greg/Emily}} got a job offer. "
            "Should {{he/she}} negotiate the salary?",
            "probability": 0.2,
        },
    ]
)
"""What the scripted helper answers a rewrite request: two valid gender rewrites."""


@pytest.fixture(scope="module")
def corpora() -> Corpora:
    return load_corpora(shipped.ROOT)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("run")


@pytest.fixture(scope="module")
def parents(corpora: Corpora, run_dir: Path) -> dict[str, list[Probe]]:
    """Per attribute: its shipped text seeds, then its image seeds (some operators apply
    to only a few seeds, e.g. ``persona`` to third-person ones)."""
    attributes = dict.fromkeys(s.attribute for s in corpora.seeds)
    return {
        attr: [s.to_probe() for s in corpora.seeds if s.attribute == attr]
        + image_seeds(corpora, attr, run_dir)
        for attr in attributes
    }


def operator(name: str) -> Mutator:
    return load_mutators([name], helper_available=True, images_available=True)[name]


def context(
    corpora: Corpora,
    attribute: str,
    run_dir: Path,
    seed: int,
    *,
    sees: bool = True,
    reply: str | Exception = REWRITES,
) -> MutationContext:
    return MutationContext(
        corpora=corpora,
        attribute=attribute,
        rng=random.Random(seed),
        helper=Model(ScriptedHelper([reply]), rng=random.Random(0)),
        run_dir=run_dir,
        accepts_images=sees,
    )


def families(mutator: Mutator, probes: Sequence[Probe], every: int = EVERY) -> list[list[Probe]]:
    """Parent lists of the operator's arity: every ``every``-th probe, with its neighbour
    for arity 2."""
    probes = probes[::every]
    if mutator.arity == 1:
        return [[p] for p in probes]
    return [[a, b] for a, b in itertools.pairwise(probes)]


def mutate(mutator: Mutator, family: Sequence[Probe], ctx: MutationContext) -> list[Probe]:
    return asyncio.run(mutator.mutate(family, ctx))


def test_every_shipped_operator_is_discovered() -> None:
    # The shipped ones at least; a third party's installed plugin joins the list.
    assert {"crossover", "llm_rewrite", "reframe", "image_swap"} <= set(OPERATORS)


@pytest.mark.parametrize("name", OPERATORS)
def test_loads_as_a_mutator_named_by_its_entry_point(name: str) -> None:
    mutator = operator(name)
    assert isinstance(mutator, Mutator)
    assert mutator.name == name
    assert mutator.arity in (1, 2)
    assert isinstance(mutator.needs_helper, bool)
    assert isinstance(needs_images(mutator), bool)


@pytest.mark.parametrize("name", OPERATORS)
def test_children_are_valid_and_name_the_operator_and_their_parents(
    name: str, corpora: Corpora, run_dir: Path, parents: dict[str, list[Probe]]
) -> None:
    mutator = operator(name)
    produced = valid = 0
    failures: list[str] = []
    for attribute, probes in parents.items():
        for index, family in enumerate(families(mutator, probes)):
            ctx = context(corpora, attribute, run_dir, seed=index)
            for child in mutate(mutator, family, ctx):
                produced += 1
                assert isinstance(child, Probe)
                assert child.provenance.operator == name
                assert child.provenance.parents == tuple(p.id for p in family)
                generation = max(p.provenance.generation for p in family) + 1
                assert child.provenance.generation == generation
                reason = validate_child(child, family, ctx)
                valid += reason is None
                if reason is not None:
                    failures.append(f"{family[0].template} -> {child.template}: {reason}")
    assert valid >= 1, f"{name} made no valid child of any parent"
    assert valid / produced >= MIN_VALID_RATE, failures[:5]


@pytest.mark.parametrize("name", OPERATORS)
def test_the_same_rng_seed_gives_the_same_children(
    name: str, corpora: Corpora, run_dir: Path, parents: dict[str, list[Probe]]
) -> None:
    mutator = operator(name)

    def children() -> list[str]:
        made = []
        for attribute, probes in parents.items():
            for index, family in enumerate(families(mutator, probes, every=2 * EVERY)):
                ctx = context(corpora, attribute, run_dir, seed=index)
                made += [c.id for c in mutate(mutator, family, ctx)]
        return made

    first = children()
    assert first
    assert children() == first


@pytest.mark.parametrize("name", OPERATORS)
def test_a_parent_it_cannot_use_gives_nothing_rather_than_an_error(
    name: str, corpora: Corpora, run_dir: Path, parents: dict[str, list[Probe]]
) -> None:
    mutator = operator(name)
    # Attributes interleaved, so each parent (and each pair) meets a foreign neighbour.
    mixed = [p for probes in zip(*parents.values(), strict=False) for p in probes]
    before = [p.model_dump() for p in mixed]
    # Another attribute's parents; a blind target; a helper that answers junk or fails.
    cases: list[tuple[str, bool, str | Exception]] = [
        ("age", True, REWRITES),
        ("gender", False, REWRITES),
        ("gender", True, "no candidates here"),
        ("gender", True, ModelCallError("scripted", 1, "boom")),
    ]
    for attribute, sees, reply in cases:
        for index, family in enumerate(families(mutator, mixed)):
            ctx = context(corpora, attribute, run_dir, seed=index, sees=sees, reply=reply)
            children = mutate(mutator, family, ctx)
            assert isinstance(children, list)
            if not sees:
                assert not any(child.media for child in children), "images for a blind target"
    assert [p.model_dump() for p in mixed] == before
