"""``sim``: a planted-bias simulator, a chat model whose bias is known in advance.

Its answers differ between groups only in configured *regions* (a question is in a
region when it mentions one of the region's keywords); everywhere else every group
draws from one neutral pool. Sampling noise is real: each answer is drawn from a pool
of paraphrases with the call's seed, so samples of one variant differ as much as
samples of different variants do outside the regions. That makes it the ground truth
for testing and benchmarking the search: a good search should find the regions.

``sim`` uses ``corpora/simulator/planted.yaml``; ``sim:PATH`` another file of the same
format. It is deterministic for a given seed, needs no network and answers instantly
(plus ``latency_s`` if set, for throughput benchmarks).

**Decisions, with known truth.** Asked for the first token's log-probabilities (the
decision measurement, :mod:`probegen.decision`), it answers a yes/no question with
P(yes) built from known parts: a base for the question (drawn from its wording with
every group signal and the instruction removed), a *quirk per first name* and a smaller
one per instruction wording (``decision.name_sd``, ``decision.wording_sd``), and, only
inside a region, a drop of ``decision_gap`` for the region's target groups. So a search
on the simulator meets what a real model has: names that differ for no group reason,
which a measurement over one name pair would report as bias.

**Graded regions: ground truth with a gradient.** A region may list *aspects* instead of
keywords: each aspect a named list of keywords (and phrases) with a ``weight`` (default 1).
A question *hits* an aspect when it contains one of its keywords as whole words
(case-insensitive; a phrase matches a run of whole words). Its **strength** in the region
is the weighted share of the aspects it hits, raised to the region's ``gamma`` (default 1)::

    strength = (sum of weights of the aspects hit / sum of all weights) ** gamma

so it is 0 when no aspect is hit, 1 when all are, and grows with every aspect a question
combines (with four equal aspects and ``gamma: 1``: 0.25, 0.5, 0.75, 1). Strength acts
on both measurements, and only for a variant naming one of the region's
``target_groups`` (every other group answers exactly as outside the region):

- sampled answers: with probability ``strength * (1 - noise)`` the answer comes from the
  region's ``target_answers`` (the biased pool), else from the neutral pool;
- the decision measurement: P(yes) drops by ``strength * decision_gap``.

A question in several regions is governed by the one where its strength is highest (the
first in the file on ties); a flat keyword region is a region of one aspect (strength 1
when a keyword is present). :meth:`SimConfig.true_bias` and :meth:`SimConfig.true_region`
expose this truth for benchmarks: the strength the question's wording carries between a
target group and any other group. A probe counts as *strongly biased* when its true bias
is at least :data:`STRONG_BIAS` (0.75: with four equal aspects, three or more combined).
The decision measurement keeps a probe only up to its yes/no question mark, so wording
after it (a trailing framing) counts for sampled answers, not for decisions.

``corpora/simulator/graded-*.yaml`` ship graded region sets on different topics, so a
benchmark can vary the ground truth across runs; each file's header says how strength
is computed and which aspects the shipped corpora can write.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import random
import re
import threading
from collections.abc import Collection, Sequence
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    model_validator,
)

import corpora as shipped_corpora
from probegen.corpora import load_corpora
from probegen.errors import ModelUnavailableError
from probegen.models.base import ChatMessage, GenerateConfig, Response, RetryHint, Usage

__all__ = [
    "DEFAULT_SIM_CONFIG",
    "GRADED_SIM_CONFIGS",
    "HELDOUT_SIM_CONFIGS",
    "STRONG_BIAS",
    "Aspect",
    "GradedRegion",
    "Region",
    "SimConfig",
    "SimulatorBackend",
]

DEFAULT_SIM_CONFIG = shipped_corpora.ROOT / "simulator" / "planted.yaml"
GRADED_SIM_CONFIGS = tuple(sorted((shipped_corpora.ROOT / "simulator").glob("graded-*.yaml")))
"""The shipped graded region sets, one topic pair each, to vary across benchmark runs."""
HELDOUT_SIM_CONFIGS = tuple(
    sorted((shipped_corpora.ROOT / "simulator" / "heldout").glob("graded-*.yaml"))
)
"""Graded region sets outside the benchmark's rotation, on other topics, written after the
search's defaults were set: a check that its lead is not a property of the rotated sets.
(``heldout/planted-*.yaml`` are the same for the flat keyword simulator.)"""
STRONG_BIAS = 0.75
"""True bias at or above which a probe counts as strongly biased (benchmarks)."""
_WORD = re.compile(r"[a-z0-9]+")


def _padded_words(text: str) -> str:
    # " w1 w2 ... ": a phrase of whole words is then a substring with spaces at both ends.
    return f" {' '.join(_WORD.findall(text.lower()))} "


_FORMAT_FIX = (
    "follow the format of corpora/simulator/planted.yaml (keyword regions) or "
    "corpora/simulator/graded-care.yaml (graded regions)"
)


def _check_keywords(owner: str, keywords: list[str]) -> None:
    # A keyword without a word could never match: refuse it where the file is read.
    for keyword in keywords:
        if not _WORD.search(keyword.lower()):
            raise ValueError(f"{owner}: keyword {keyword!r} has no letters or digits")


def _first_problem(error: ValidationError) -> str:
    """The first validation problem as ``where: what`` (the region kind's tag dropped)."""
    problem = error.errors()[0]
    where = ".".join(str(part) for part in problem["loc"] if part not in ("flat", "graded"))
    message = str(problem["msg"]).removeprefix("Value error, ")
    return f"{where}: {message}" if where else message


class Region(BaseModel):
    """Where the simulated model treats some groups differently."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    keywords: list[str] = Field(min_length=1)
    target_groups: list[str] = Field(min_length=1)
    target_answers: list[str] = Field(min_length=1)
    other_answers: list[str] = Field(min_length=1)
    decision_gap: float = Field(0.15, ge=0.0, le=1.0)
    """How much lower P(yes) is for the target groups in a yes/no decision."""

    @model_validator(mode="after")
    def _keywords_have_words(self) -> Region:
        _check_keywords(f"region '{self.name}'", self.keywords)
        return self

    @cached_property
    def _as_aspect(self) -> Aspect:
        # A flat region is a region of one aspect, so a keyword is matched exactly as an
        # aspect's is: a phrase ("team lead") as a run of whole words, not as one word
        # (which could never match, and silently left such a keyword dead).
        return Aspect(name=self.name, keywords=self.keywords)

    def strength(self, question: str) -> float:
        """1 when ``question`` mentions a keyword or phrase (as whole words), else 0."""
        return 1.0 if self._as_aspect.mentioned_in(question) else 0.0


class Aspect(BaseModel):
    """One aspect of a graded region: words any of which make a question touch it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    keywords: list[str] = Field(min_length=1)
    """Words or phrases, matched as whole words, case-insensitively."""
    weight: float = Field(1.0, gt=0.0)
    """Its share of the region's strength, relative to the other aspects' weights."""

    @model_validator(mode="after")
    def _keywords_have_words(self) -> Aspect:
        _check_keywords(f"aspect '{self.name}'", self.keywords)
        return self

    @cached_property
    def _phrases(self) -> tuple[str, ...]:
        return tuple(_padded_words(keyword) for keyword in self.keywords)

    def _hit(self, padded: str) -> bool:
        return any(phrase in padded for phrase in self._phrases)

    def mentioned_in(self, question: str) -> bool:
        """Whether ``question`` contains one of the keywords as whole words."""
        return self._hit(_padded_words(question))


class GradedRegion(BaseModel):
    """A region whose bias grows with the number of its aspects a question combines."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    aspects: list[Aspect] = Field(min_length=1)
    gamma: float = Field(1.0, gt=0.0)
    """Shape of the gradient: ``strength = share_of_aspects ** gamma``."""
    target_groups: list[str] = Field(min_length=1)
    target_answers: list[str] = Field(min_length=1)
    """The biased pool a target group's answer comes from, with probability strength."""
    decision_gap: float = Field(0.3, ge=0.0, le=1.0)
    """The drop in P(yes) for the target groups at full strength."""

    @model_validator(mode="after")
    def _distinct_aspects(self) -> GradedRegion:
        names = [aspect.name for aspect in self.aspects]
        if len(set(names)) != len(names):
            raise ValueError(f"region '{self.name}': aspect names must be distinct")
        return self

    @property
    def keywords(self) -> list[str]:
        """Every aspect's keywords (a question mentioning any is in the region)."""
        return [keyword for aspect in self.aspects for keyword in aspect.keywords]

    def aspects_hit(self, question: str) -> list[str]:
        """The names of the aspects ``question`` touches, in file order."""
        padded = _padded_words(question)
        return [aspect.name for aspect in self.aspects if aspect._hit(padded)]

    def strength(self, question: str) -> float:
        """``(weighted share of the aspects hit) ** gamma``, in [0, 1]."""
        padded = _padded_words(question)
        hit = sum(aspect.weight for aspect in self.aspects if aspect._hit(padded))
        total = sum(aspect.weight for aspect in self.aspects)
        return float((hit / total) ** self.gamma)


def _region_kind(value: Any) -> str:
    # A region with aspects is graded; anything else is read (and reported) as flat.
    if isinstance(value, GradedRegion) or (isinstance(value, dict) and "aspects" in value):
        return "graded"
    return "flat"


AnyRegion = Annotated[
    Annotated[Region, Tag("flat")] | Annotated[GradedRegion, Tag("graded")],
    Discriminator(_region_kind),
]


class DecisionTruth(BaseModel):
    """How the simulator's P(yes) varies outside any group effect."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    base_low: float = Field(0.25, ge=0.0, le=1.0)
    base_high: float = Field(0.75, ge=0.0, le=1.0)
    name_sd: float = Field(0.05, ge=0.0)
    """Spread of the per-name quirk: what one name pair would mistake for bias."""
    wording_sd: float = Field(0.02, ge=0.0)
    """Spread of the per-instruction-wording shift (shared by every group)."""
    interaction_sd: float = Field(0.015, ge=0.0)
    """Spread of a shift per question, wording and group: no group effect, but enough
    to make one wording of one probe look like one."""


class SimConfig(BaseModel):
    """A simulator file (see ``corpora/simulator/planted.yaml``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    attribute: str
    noise: float = Field(0.0, ge=0.0, le=1.0)
    sentences: int = Field(1, ge=1)
    """Sentences per answer, drawn without replacement from the pool, in random order."""
    regions: list[AnyRegion] = Field(default_factory=list)
    """Flat (``keywords``) or graded (``aspects``) regions; the file is graded when any
    region declares aspects."""
    neutral: list[str] = Field(min_length=1)
    latency_s: float = Field(0.0, ge=0.0)
    """Fixed delay per call, to stand in for a remote server in benchmarks."""
    stall_after: int | None = Field(None, ge=0)
    """Hang (never answer) after this many answered calls: a stuck server, for tests."""
    call_log: Path | None = None
    """Append one line per answered call to this file, to count calls across processes."""
    decision: DecisionTruth = DecisionTruth()

    @model_validator(mode="after")
    def _distinct_regions(self) -> SimConfig:
        names = [region.name for region in self.regions]
        if len(set(names)) != len(names):
            raise ValueError("region names must be distinct")
        return self

    @property
    def graded(self) -> bool:
        """Whether any region declares aspects."""
        return any(isinstance(region, GradedRegion) for region in self.regions)

    def strongest(self, question: str) -> tuple[Region | GradedRegion | None, float]:
        """The region where ``question`` is strongest (first on ties), and that strength;
        ``(None, 0.0)`` outside every region."""
        best: Region | GradedRegion | None = None
        top = 0.0
        for region in self.regions:
            strength = region.strength(question)
            if strength > top:
                best, top = region, strength
        return best, top

    def true_region(self, question: str) -> Region | GradedRegion | None:
        """The region that governs ``question``'s answers, or None outside every region."""
        return self.strongest(question)[0]

    def true_bias(self, question: str, groups: Collection[str] | None = None) -> float:
        """The planted bias of ``question``: its strength in :meth:`true_region`.

        This is how differently the simulator treats a variant naming one of the region's
        target groups and one naming any other group (0 outside every region, 1 at full
        strength). The words that name groups do not change it, so any variant's text,
        or the template, gives the same value.

        Args:
            question: A variant's text or a template.
            groups: The groups a probe compares, if known: then the bias is 0 unless they
                include a target group of the region and a group that is not one.
        """
        region, strength = self.strongest(question)
        if region is None:
            return 0.0
        if groups is not None:
            targets = set(region.target_groups)
            if not (set(groups) & targets and set(groups) - targets):
                return 0.0
        return strength

    def answer_identity(self) -> str:
        """A digest of what determines the answers (not latency, stalls or logging), so
        changing those keeps the response cache valid."""
        relevant = self.model_dump_json(exclude={"latency_s", "stall_after", "call_log"})
        return hashlib.sha256(relevant.encode()).hexdigest()[:12]

    @classmethod
    def load(cls, path: Path) -> SimConfig:
        """Read and validate a simulator file; errors are one line naming the file."""
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
            return cls.model_validate(data)
        except OSError as error:
            raise ModelUnavailableError(
                f"sim:{path}: cannot read the simulator file ({error.strerror})",
                fix="pass sim:PATH to an existing file, or plain sim",
            ) from error
        except yaml.YAMLError as error:
            first = str(error).splitlines()[0:3]
            raise ModelUnavailableError(
                f"sim:{path}: invalid simulator file: {' '.join(first)}",
                fix=_FORMAT_FIX,
            ) from error
        except ValidationError as error:
            raise ModelUnavailableError(
                f"sim:{path}: invalid simulator file: {_first_problem(error)}", fix=_FORMAT_FIX
            ) from error


def _whole_words(phrases: set[str], *, ignore_case: bool) -> re.Pattern[str]:
    # Longest first, so a phrase is never read as part of a longer one.
    ordered = sorted(phrases, key=len, reverse=True)
    alternatives = "|".join(re.escape(p) for p in ordered)
    return re.compile(rf"(?<![\w-])(?:{alternatives})(?![\w-])", re.I if ignore_case else 0)


def _uniform(*parts: str) -> float:
    digest = hashlib.sha256("\x00".join(parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def _normal(*parts: str) -> float:
    return random.Random(int(_uniform(*parts) * 2**53)).gauss(0.0, 1.0)


class SimulatorBackend:
    """The planted-bias simulator as a :class:`~probegen.models.base.ChatModel`.

    Args:
        path: The simulator file; None for the shipped default.
        max_concurrency: Calls in flight at once (it is instant, so mostly for benchmarks).
    """

    supports_logprobs = True
    """Asked for log-probabilities, it answers a yes/no question with known P(yes)."""

    def __init__(self, path: Path | None = None, *, max_concurrency: int | None = None) -> None:
        self.path = path or DEFAULT_SIM_CONFIG
        self.config = SimConfig.load(self.path)
        self.attribute = load_corpora().attribute(self.config.attribute)
        self._identity = f"sim:{self.path.name}#{self.config.answer_identity()}"
        self._spec = "sim" if path is None else f"sim:{path}"
        self._max_concurrency = max_concurrency or 16
        self._answered = 0
        self._lock = threading.Lock()
        names = {n for g in self.attribute.groups.values() for n in g.names}
        forms = {form for g in self.attribute.groups.values() for _, form in g.forms()}
        self._name_pattern = _whole_words(names, ignore_case=False)
        self._group_pattern = _whole_words(forms | names, ignore_case=True)
        self._check_regions()

    def _check_regions(self) -> None:
        """Target groups must be groups of the attribute, and no keyword may name one
        (it would differ between variants, so no group could be compared in-region)."""
        groups = self.attribute.groups
        for region in self.config.regions:
            for group in region.target_groups:
                if group not in groups:
                    raise ModelUnavailableError(
                        f"sim:{self.path}: region '{region.name}': target group '{group}' "
                        f"is not a group of {self.attribute.id}",
                        fix=f"use one of: {', '.join(groups)}",
                    )
            for keyword in region.keywords:
                named = self.attribute.match(keyword)
                if named:
                    raise ModelUnavailableError(
                        f"sim:{self.path}: region '{region.name}': keyword '{keyword}' names "
                        f"the group '{sorted(named)[0]}' of {self.attribute.id}",
                        fix="use keywords that are the same in every variant",
                    )

    @property
    def spec(self) -> str:
        return self._spec

    @property
    def identity(self) -> str:
        return self._identity

    @property
    def max_concurrency(self) -> int:
        return self._max_concurrency

    def region_of(self, question: str) -> Region | GradedRegion | None:
        """The region that governs the question's answers, if any: the first region whose
        keywords it mentions, or for graded regions the one where it is strongest."""
        return self.config.true_region(question)

    def true_region(self, question: str) -> Region | GradedRegion | None:
        """See :meth:`SimConfig.true_region`."""
        return self.config.true_region(question)

    def true_bias(self, question: str, groups: Collection[str] | None = None) -> float:
        """See :meth:`SimConfig.true_bias` (0 outside every region, else in (0, 1])."""
        return self.config.true_bias(question, groups)

    def group_of(self, question: str) -> str | None:
        """The one group of the attribute the question names, or None."""
        groups = self.attribute.match(question)
        return next(iter(groups)) if len(groups) == 1 else None

    def p_yes(self, prompt: str) -> float:
        """The simulated probability of answering "yes" to a yes/no ``prompt``."""
        truth = self.config.decision
        stem, _, wording = prompt.rpartition("?")
        used = {m.group(0) for m in self._name_pattern.finditer(stem)}
        # Every word or phrase naming a group goes, whole ("non-binary person",
        # "Min-jun"): what is left is the question, the same for every variant.
        # Short words go too: "I'm a man" and "I'm non-binary" differ by an article.
        words = _WORD.findall(self._group_pattern.sub(" ", stem).lower())
        neutral = " ".join(w for w in words if len(w) > 3)
        p = truth.base_low + (truth.base_high - truth.base_low) * _uniform("base", neutral)
        p += sum(truth.name_sd * _normal("name", n) for n in used)
        p += truth.wording_sd * _normal("wording", wording.strip().lower())
        # How one wording happens to sit with one group's words on this question: the
        # noise an explicit probe's test, over wordings, has to stand out from.
        group = self.group_of(prompt) or ""
        p += truth.interaction_sd * _normal("interaction", neutral, wording.strip().lower(), group)
        region, strength = self.config.strongest(prompt)
        if region is not None and self.group_of(prompt) in region.target_groups:
            p -= strength * region.decision_gap
        return min(0.98, max(0.02, p))

    def answer(self, question: str, seed: int | None) -> str:
        """The deterministic answer to ``question`` for a sampling ``seed``."""
        material = f"{question}\x00{seed}".encode()
        rng = random.Random(int.from_bytes(hashlib.sha256(material).digest()[:8], "big"))
        region, strength = self.config.strongest(question)
        if isinstance(region, GradedRegion):
            # Other groups answer as outside the region; a target group's answer is
            # biased with probability strength (less the file's noise).
            chance = strength * (1.0 - self.config.noise)
            target = self.group_of(question) in region.target_groups
            biased = target and rng.random() < chance
            pool = region.target_answers if biased else self.config.neutral
        elif region is None or rng.random() < self.config.noise:
            pool = self.config.neutral
        elif self.group_of(question) in region.target_groups:
            pool = region.target_answers
        else:
            pool = region.other_answers
        return " ".join(rng.sample(pool, min(self.config.sentences, len(pool))))

    async def generate(self, messages: Sequence[ChatMessage], config: GenerateConfig) -> Response:
        question = next((m.content for m in reversed(messages) if m.role == "user"), "")
        with self._lock:
            stall = (
                self.config.stall_after is not None and self._answered >= self.config.stall_after
            )
            if not stall:
                self._answered += 1
        if stall:
            await asyncio.Event().wait()  # a stuck server: never answers
        if self.config.latency_s:
            await asyncio.sleep(self.config.latency_s)
        if config.top_logprobs is not None:
            # The decision measurement: the first token's distribution over yes and no.
            p = self.p_yes(question)
            text = "Yes" if p >= 0.5 else "No"
            logprobs = {"Yes": math.log(p), "No": math.log(1.0 - p)}
        else:
            text, logprobs = self.answer(question, config.seed), None
        if self.config.call_log is not None:
            with self.config.call_log.open("a", encoding="utf-8") as log:
                log.write(f"{config.seed}\t{question}\n")
        return Response(
            text=text,
            finish_reason="stop",
            model=self._identity,
            usage=Usage(input_tokens=len(question.split()), output_tokens=len(text.split())),
            top_logprobs=logprobs,
        )

    def retry_hint(self, error: BaseException) -> RetryHint | None:
        return None

    async def aclose(self) -> None:
        return None
