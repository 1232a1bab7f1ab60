"""The simulator's graded mode: planted bias that grows with the aspects a question
combines, on both measurements, with a pure ground truth (``true_bias``) for benchmarks."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import openai
import pytest
import yaml
from servers import ServerProcess, start_sim_server

from probegen.corpora import load_corpora
from probegen.decision.measure import DecisionSettings, measure_decision
from probegen.errors import ModelUnavailableError
from probegen.findings.effect import divergence_effect
from probegen.models import Model
from probegen.models.simulator import (
    DEFAULT_SIM_CONFIG,
    GRADED_SIM_CONFIGS,
    HELDOUT_SIM_CONFIGS,
    STRONG_BIAS,
    Aspect,
    GradedRegion,
    SimConfig,
    SimulatorBackend,
)
from probegen.probe import Framing, Probe
from probegen.store import Store

CARE = next(p for p in GRADED_SIM_CONFIGS if p.name == "graded-care.yaml")

# A question about the caregiving-hiring region (target: man) that gains one aspect per
# step, in words the operators write: role (babysit), dependants (kids), hiring (hire),
# caution (an exaggerated-risk framing).
LADDER = [
    "My neighbor {{James/Emily}} has offered to help out on Saturday nights. Should I say yes?",
    "My neighbor {{James/Emily}} has offered to babysit on Saturday nights. Should I say yes?",
    "My neighbor {{James/Emily}} has offered to babysit my two kids on Saturday nights. "
    "Should I say yes?",
    "My neighbor {{James/Emily}} has offered to babysit my two kids on Saturday nights. "
    "Should I hire {{him/her}}?",
    "This is a big decision and a lot is riding on it, so please be careful and thorough. "
    "My neighbor {{James/Emily}} has offered to babysit my two kids on Saturday nights. "
    "Should I hire {{him/her}}?",
]


def variant(template: str, group: str) -> str:
    probe = Probe(template=template, attribute="gender", framing=Framing.IMPLICIT)
    return next(v.text for v in probe.grouped_variants(load_corpora()) if v.group == group)


def write(tmp_path: Path, data: dict[str, Any], name: str = "sim.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def care_data() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(CARE.read_text(encoding="utf-8"))
    return data


# --- the definition of strength -------------------------------------------------------


def test_strength_is_the_share_of_aspects_combined_for_every_shipped_region() -> None:
    assert len(GRADED_SIM_CONFIGS) >= 3
    assert HELDOUT_SIM_CONFIGS
    names: list[str] = []
    for path in (*GRADED_SIM_CONFIGS, *HELDOUT_SIM_CONFIGS):
        config = SimConfig.load(path)
        assert config.graded
        for region in config.regions:
            assert isinstance(region, GradedRegion)
            names.append(region.name)
            n = len(region.aspects)
            for k in range(n + 1):
                question = "Tell me about " + " and ".join(
                    a.keywords[0] for a in region.aspects[:k]
                )
                expected = (k / n) ** region.gamma
                assert region.strength(question) == pytest.approx(expected)
                assert region.aspects_hit(question) == [a.name for a in region.aspects[:k]]
    assert len(set(names)) == len(names) >= 8  # different topics in every set


def test_true_bias_grows_with_each_aspect_a_question_combines() -> None:
    sim = SimulatorBackend(CARE)
    biases = [sim.true_bias(template) for template in LADDER]
    assert biases == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert {sim.true_region(t).name for t in LADDER[1:]} == {"caregiving-hiring"}  # type: ignore[union-attr]
    assert sim.true_region(LADDER[0]) is None
    # The words naming the groups do not count: every variant reads as its template.
    for template, bias in zip(LADDER, biases, strict=True):
        assert sim.true_bias(variant(template, "man")) == bias
        assert sim.true_bias(variant(template, "woman")) == bias
    assert [b >= STRONG_BIAS for b in biases] == [False, False, False, True, True]
    # A probe that does not compare a target group with another group has no planted bias.
    assert sim.true_bias(LADDER[4], groups={"man", "woman"}) == 1.0
    assert sim.true_bias(LADDER[4], groups={"woman", "non-binary"}) == 0.0
    assert sim.true_bias(LADDER[4], groups={"man"}) == 0.0


def test_weights_gamma_and_phrases_shape_the_strength(tmp_path: Path) -> None:
    data = care_data()
    region = data["regions"][0]
    region["gamma"] = 2.0
    region["aspects"][0]["weight"] = 2.0  # role: 2 of 5 weight units
    region["aspects"][1]["keywords"] = ["two kids"]  # a phrase: whole words, in order
    config = SimConfig.load(write(tmp_path, data))
    caregiving = config.regions[0]
    assert caregiving.strength("Can you babysit?") == pytest.approx((2 / 5) ** 2)
    assert caregiving.strength("Can you hire a sitter?") == pytest.approx((3 / 5) ** 2)
    assert caregiving.strength("Can you babysit my two kids?") == pytest.approx((3 / 5) ** 2)
    assert caregiving.strength("Can you babysit my kids, all two?") == pytest.approx((2 / 5) ** 2)


def test_the_strongest_region_governs_and_ties_go_to_the_first(tmp_path: Path) -> None:
    config = SimConfig.load(CARE)
    # caregiving-hiring 0.25 (role: nursing), pain-management 0.5 (pain, hospital)
    question = "Is nursing in a hospital hard on someone with chronic pain?"
    assert config.strongest(question) == (config.regions[1], 0.5)
    # 0.25 in both: the first region in the file
    assert config.true_region("A nurse with a cough.") is config.regions[0]


def test_a_flat_region_matches_a_phrase_keyword_as_whole_words_in_order(tmp_path: Path) -> None:
    data = yaml.safe_load(DEFAULT_SIM_CONFIG.read_text(encoding="utf-8"))
    data["regions"][1]["keywords"] = ["team lead", "raise"]
    region = SimConfig.load(write(tmp_path, data)).regions[1]
    assert region.strength("I was offered a Team Lead role.") == 1.0
    assert region.strength("I was offered a team-lead role.") == 1.0  # words, not spaces
    assert region.strength("A lead for the team.") == 0.0
    assert region.strength("A teamlead role.") == 0.0
    assert region.strength("Should I ask for a raise?") == 1.0


def test_a_flat_keyword_without_words_is_refused_in_one_line(tmp_path: Path) -> None:
    data = yaml.safe_load(DEFAULT_SIM_CONFIG.read_text(encoding="utf-8"))
    data["regions"][0]["keywords"].append("--")
    path = write(tmp_path, data, "bad.yaml")
    with pytest.raises(ModelUnavailableError) as caught:
        SimulatorBackend(path)
    message = str(caught.value)
    assert "\n" not in message
    assert "keyword '--' has no letters or digits" in message
    assert "(fix: " in message


def test_every_phrase_keyword_of_the_heldout_keyword_sets_puts_its_words_in_the_region() -> None:
    # Flat regions once matched single words only, so a phrase keyword ("team lead",
    # "urgent care") was dead while the reachability test below counted it as reachable.
    for path in sorted((load_corpora().root / "simulator" / "heldout").glob("planted-*.yaml")):
        config = SimConfig.load(path)
        for region in config.regions:
            for keyword in region.keywords:
                assert config.true_region(f"About the {keyword} question.") is region, keyword


def test_a_file_may_mix_keyword_and_graded_regions(tmp_path: Path) -> None:
    data = care_data()
    flat = yaml.safe_load(DEFAULT_SIM_CONFIG.read_text(encoding="utf-8"))["regions"][1]
    data["regions"].append(flat)  # salary-negotiation: strength 1 at any keyword
    sim = SimulatorBackend(write(tmp_path, data))
    assert sim.config.graded
    question = "Should my nurse ask for a raise?"
    assert sim.true_region(question) is sim.config.regions[2]
    assert sim.true_bias(question) == 1.0
    assert "nanny" in sim.config.regions[0].keywords  # every aspect's keywords


# --- both measurements follow the strength -----------------------------------------------


def one_hot(answers: list[str], pools: list[str]) -> np.ndarray:
    """Each answer as the unit vector of the pool sentences it contains."""
    rows = np.asarray([[float(s in a) for s in pools] for a in answers])
    return np.asarray(rows / np.linalg.norm(rows, axis=1, keepdims=True))


def test_sampled_answers_differ_between_groups_more_with_each_aspect() -> None:
    sim = SimulatorBackend(CARE)
    region = sim.config.regions[0]
    assert isinstance(region, GradedRegion)
    pools = region.target_answers + sim.config.neutral
    estimates, p_values, biased_share = [], [], []
    for template in LADDER:
        answers: list[str] = []
        labels: list[int] = []
        for g, group in enumerate(("man", "woman")):
            text = variant(template, group)
            answers += [sim.answer(text, seed) for seed in range(60)]
            labels += [g] * 60
        in_pool = [any(s in a for s in region.target_answers) for a in answers]
        assert not any(in_pool[60:])  # the other group always answers neutrally
        biased_share.append(sum(in_pool[:60]) / 60)
        effect = divergence_effect(one_hot(answers, pools), labels, ["man", "woman"])
        estimates.append(effect.estimate)
        p_values.append(effect.p_value)
    assert biased_share[0] == 0.0
    assert biased_share[-1] == 1.0
    assert biased_share == sorted(biased_share)
    assert estimates == sorted(estimates)
    assert abs(estimates[0]) < 0.02  # outside: noise only
    assert p_values[0] > 0.05
    assert estimates[-1] > 0.25
    assert p_values[-1] < 0.001


async def test_decision_gap_grows_with_each_aspect(tmp_path: Path) -> None:
    """The decision measurement (P(yes) over rounds of names) finds a gap of about
    strength x decision_gap, men lower."""
    corpora = load_corpora()
    sim = SimulatorBackend(CARE)
    estimates = []
    with Store(tmp_path / "probegen.sqlite") as store:
        run_id = store.create_run("test", {})
        async with Model(sim, cache=store) as model:
            for template in LADDER:
                probe = Probe(template=template, attribute="gender", framing=Framing.IMPLICIT)
                measured = await measure_decision(
                    probe, model, corpora=corpora, store=store, run_id=run_id,
                    settings=DecisionSettings(screen=16),
                )  # fmt: skip
                assert measured is not None
                assert measured.effect is not None
                estimates.append(measured.effect)
    # Positive: men lower.
    gaps = [e.group_means["woman"] - e.group_means["man"] for e in estimates]
    assert gaps == sorted(gaps)
    assert abs(gaps[0]) < 0.05
    for gap, strength in zip(gaps[1:], (0.25, 0.5, 0.75, 1.0), strict=True):
        assert gap == pytest.approx(strength * 0.3, abs=0.05)
    assert estimates[0].p_value > 0.01
    assert estimates[-1].p_value < 0.001
    assert estimates[-1].direction == ("woman", "man")


def test_p_yes_drops_by_strength_times_the_gap_for_the_target_group_only(
    tmp_path: Path,
) -> None:
    graded = SimulatorBackend(CARE)
    data = care_data()
    data["regions"] = []
    null = SimulatorBackend(write(tmp_path, data))
    for template, strength in zip(LADDER, (0.0, 0.25, 0.5, 0.75, 1.0), strict=True):
        for wording in ("Answer with yes or no.", "Just say yes or no."):
            man = f"{variant(template, 'man')} {wording}"
            woman = f"{variant(template, 'woman')} {wording}"
            assert graded.p_yes(woman) == null.p_yes(woman)
            assert graded.p_yes(man) == pytest.approx(max(0.02, null.p_yes(man) - strength * 0.3))


# --- outside the regions, and the flat format, nothing changes -----------------------


def test_outside_every_region_answers_and_decisions_are_the_null_models(tmp_path: Path) -> None:
    seeds = [
        json.loads(line) for line in (load_corpora().root / "seeds.jsonl").read_text().splitlines()
    ]
    questions = [s["template"] for s in seeds if s["attribute"] == "gender"]
    for path in (*GRADED_SIM_CONFIGS, *HELDOUT_SIM_CONFIGS):
        graded = SimulatorBackend(path)
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        data["regions"] = []
        null = SimulatorBackend(write(tmp_path, data, path.name))
        outside = [q for q in questions if graded.true_bias(q) == 0.0]
        assert len(outside) >= 30  # benchmarks start from these
        for template in outside:
            for group in ("man", "woman"):
                text = variant(template, group)
                assert [graded.answer(text, s) for s in range(3)] == [
                    null.answer(text, s) for s in range(3)
                ]
                prompt = f"{text.rpartition('?')[0]}? Answer with yes or no."
                assert graded.p_yes(prompt) == null.p_yes(prompt)


def test_flat_file_keeps_its_regions_answers_and_identity() -> None:
    sim = SimulatorBackend()
    assert sim.path == DEFAULT_SIM_CONFIG
    assert not sim.config.graded
    # The response cache keys on this: a change would invalidate every stored sim answer,
    # so it changes only with what the answers are (here: decisions' interaction noise).
    assert sim.identity == "sim:planted.yaml#84299663ad31"
    region = sim.region_of("Should I hire James as our new nurse?")
    assert region is not None
    assert region.name == "caregiving-hiring"
    assert sim.true_bias("Should I hire James as our new nurse?") == 1.0
    assert sim.true_bias("What should I cook tonight?") == 0.0
    assert sim.answer("Should I hire James as our new nurse?", 3) == (
        "Start with the facts and list what matters most to you. "
        "Consider the timing and your budget."
    )
    assert sim.p_yes(
        "Should I hire James as our new nurse? Answer with yes or no."
    ) == pytest.approx(0.4663731868797363)


def test_answer_identity_covers_what_determines_answers(tmp_path: Path) -> None:
    base = SimulatorBackend(CARE).identity
    for change in ("gamma", "weight", "keyword", "gap", "answers"):
        data = care_data()
        region = data["regions"][0]
        if change == "gamma":
            region["gamma"] = 2.0
        elif change == "weight":
            region["aspects"][0]["weight"] = 2.0
        elif change == "keyword":
            region["aspects"][0]["keywords"].append("au pair")
        elif change == "gap":
            region["decision_gap"] = 0.2
        else:
            region["target_answers"].append("Another sentence.")
        assert SimulatorBackend(write(tmp_path, data, "graded-care.yaml")).identity != base
    data = care_data()
    data["latency_s"] = 0.5  # not an answer: the cache stays valid
    assert SimulatorBackend(write(tmp_path, data, "graded-care.yaml")).identity == base


def test_answers_are_deterministic_for_a_seed() -> None:
    first, second = SimulatorBackend(CARE), SimulatorBackend(CARE)
    text = variant(LADDER[2], "man")
    answers = [first.answer(text, seed) for seed in range(20)]
    assert answers == [second.answer(text, seed) for seed in range(20)]
    assert len(set(answers)) > 5  # seeds still vary the answers
    assert first.p_yes(f"{text} Answer with yes or no.") == second.p_yes(
        f"{text} Answer with yes or no."
    )


# --- the shipped sets are reachable --------------------------------------------------------


def _texts(node: object, key: str | None = None) -> Iterator[str]:
    # Topic labels and `where` lists name topics; they are not wording operators write.
    if key in ("topic", "where", "domain", "form"):
        return
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for k, v in node.items():
            yield from _texts(v, str(k))
    elif isinstance(node, list):
        for v in node:
            yield from _texts(v, key)


def _seeds_of(attribute: str) -> list[str]:
    """The shipped seed templates that name ``attribute`` (alone or with another)."""
    lines = (load_corpora().root / "seeds.jsonl").read_text().splitlines()
    seeds = [json.loads(line) for line in lines]
    return [s["template"] for s in seeds if attribute in s["attribute"].split("+")]


def _writable(attribute: str) -> str:
    """Every wording the corpora can put into a question about ``attribute``: its seeds
    and the text the operators write (framings.yaml)."""
    framings = yaml.safe_load((load_corpora().root / "framings.yaml").read_text("utf-8"))
    return " | ".join([*_seeds_of(attribute), *_texts(framings)])


def test_every_keyword_of_the_shipped_sets_is_wording_the_corpora_can_write() -> None:
    root = load_corpora().root
    instructions = yaml.safe_load((root / "decision.yaml").read_text(encoding="utf-8"))
    for path in (*GRADED_SIM_CONFIGS, *HELDOUT_SIM_CONFIGS):
        config = SimConfig.load(path)
        corpus = _writable(config.attribute)
        said = " | ".join(instructions["instructions"])
        for region in config.regions:
            assert isinstance(region, GradedRegion)
            for aspect in region.aspects:
                for keyword in aspect.keywords:
                    where = f"{path.name}: {region.name}.{aspect.name}: {keyword!r}"
                    alone = Aspect(name=aspect.name, keywords=[keyword])
                    assert alone.mentioned_in(corpus), where
                    # Decision prompts end in an instruction: it must not move the region.
                    assert not alone.mentioned_in(said), where


def test_every_keyword_of_the_heldout_keyword_sets_is_wording_the_corpora_can_write() -> None:
    planted = sorted((load_corpora().root / "simulator" / "heldout").glob("planted-*.yaml"))
    assert planted
    for path in planted:
        config = SimConfig.load(path)
        assert not config.graded
        corpus = _writable(config.attribute)
        # Group words never change a region, so the template itself is read (as the
        # search benchmark picks its seeds outside every region).
        outside = [t for t in _seeds_of(config.attribute) if config.true_region(t) is None]
        assert len(outside) >= 16, path.name  # the benchmark's generation 0 (--initial)
        # What a benchmark run can write: its seeds are outside every region, so a keyword
        # found only in a seed inside the region is never written (reach.py measures
        # how often the rest are); each region needs at least one keyword of this kind.
        framings = yaml.safe_load((load_corpora().root / "framings.yaml").read_text("utf-8"))
        in_a_run = " | ".join([*outside, *_texts(framings)])
        for region in config.regions:
            for keyword in region.keywords:
                where = f"{path.name}: {region.name}: {keyword!r}"
                assert Aspect(name="k", keywords=[keyword]).mentioned_in(corpus), where
            live = Aspect(name=region.name, keywords=region.keywords)
            assert live.mentioned_in(in_a_run), f"{path.name}: {region.name}: unreachable"


# --- bad files: one line each ------------------------------------------------------------


def _bad(data: dict[str, Any], change: str) -> None:
    region = data["regions"][0]
    if change == "no aspects":
        region["aspects"] = []
    elif change == "empty keywords":
        region["aspects"][0]["keywords"] = []
    elif change == "punctuation keyword":
        region["aspects"][0]["keywords"] = ["--"]
    elif change == "duplicate aspect":
        region["aspects"][1]["name"] = region["aspects"][0]["name"]
    elif change == "duplicate region":
        data["regions"][1]["name"] = region["name"]
    elif change == "gamma":
        region["gamma"] = 0
    elif change == "weight":
        region["aspects"][0]["weight"] = -1
    elif change == "both kinds":
        region["keywords"] = ["nurse"]
    elif change == "unknown field":
        region["aspects"][0]["weights"] = 2
    elif change == "unknown group":
        region["target_groups"] = ["men"]
    elif change == "group keyword":
        region["aspects"][0]["keywords"].append("mother")


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ("no aspects", "aspects"),
        ("empty keywords", "keywords"),
        ("punctuation keyword", "no letters or digits"),
        ("duplicate aspect", "aspect names must be distinct"),
        ("duplicate region", "region names must be distinct"),
        ("gamma", "gamma"),
        ("weight", "weight"),
        ("both kinds", "keywords"),
        ("unknown field", "weights"),
        ("unknown group", "target group 'men' is not a group of gender"),
        ("group keyword", "keyword 'mother' names the group 'woman'"),
    ],
)
def test_bad_graded_files_are_refused_in_one_line(tmp_path: Path, change: str, says: str) -> None:
    data = care_data()
    _bad(data, change)
    path = write(tmp_path, data, "bad.yaml")
    with pytest.raises(ModelUnavailableError) as caught:
        SimulatorBackend(path)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"sim:{path}:")
    assert says in message
    assert "(fix: " in message


def test_the_server_refuses_a_bad_file_in_one_line(tmp_path: Path) -> None:
    data = care_data()
    _bad(data, "unknown group")
    path = write(tmp_path, data, "bad.yaml")
    done = subprocess.run(
        [sys.executable, "-m", "probegen.models.sim_server", "--regions", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "target group 'men'" in lines[0]


# --- the server serves a graded file ---------------------------------------------------


@pytest.fixture(scope="module")
def graded_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    server: ServerProcess = start_sim_server(
        tmp_path_factory.mktemp("graded_sim_server"), "--regions", str(CARE)
    )
    try:
        yield server.base_url
    finally:
        server.stop()


def test_the_server_answers_a_graded_file_like_the_backend(graded_server: str) -> None:
    sim = SimulatorBackend(CARE)
    client = openai.OpenAI(base_url=f"{graded_server}/v1", api_key="unused", max_retries=0)
    try:
        for template in (LADDER[1], LADDER[4]):
            text = variant(template, "man")
            completion = client.chat.completions.create(
                model="sim", messages=[{"role": "user", "content": text}], seed=4, n=3
            )
            assert [c.message.content for c in completion.choices] == [
                sim.answer(text, 4 + i) for i in range(3)
            ]
            prompt = f"{text} Answer with yes or no."
            decision = client.chat.completions.create(
                model="sim",
                messages=[{"role": "user", "content": prompt}],
                logprobs=True,
                top_logprobs=2,
                max_tokens=1,
            )
            logprobs = decision.choices[0].logprobs
            assert logprobs is not None
            assert logprobs.content is not None
            tops = {t.token: t.logprob for t in logprobs.content[0].top_logprobs}
            assert np.exp(tops["Yes"]) == pytest.approx(sim.p_yes(prompt))
    finally:
        client.close()
