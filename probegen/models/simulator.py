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
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import random
import re
import threading
from collections.abc import Sequence
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

import corpora as shipped_corpora
from probegen.corpora import load_corpora
from probegen.errors import ModelUnavailableError
from probegen.models.base import ChatMessage, GenerateConfig, Response, RetryHint, Usage

__all__ = ["DEFAULT_SIM_CONFIG", "Region", "SimConfig", "SimulatorBackend"]

DEFAULT_SIM_CONFIG = shipped_corpora.ROOT / "simulator" / "planted.yaml"
_WORD = re.compile(r"[a-z0-9]+")


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


class DecisionTruth(BaseModel):
    """How the simulator's P(yes) varies outside any group effect."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    base_low: float = Field(0.25, ge=0.0, le=1.0)
    base_high: float = Field(0.75, ge=0.0, le=1.0)
    name_sd: float = Field(0.05, ge=0.0)
    """Spread of the per-name quirk: what one name pair would mistake for bias."""
    wording_sd: float = Field(0.02, ge=0.0)
    """Spread of the per-instruction-wording shift (shared by every group)."""


class SimConfig(BaseModel):
    """A simulator file (see ``corpora/simulator/planted.yaml``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    attribute: str
    noise: float = Field(0.0, ge=0.0, le=1.0)
    sentences: int = Field(1, ge=1)
    """Sentences per answer, drawn without replacement from the pool, in random order."""
    regions: list[Region] = Field(default_factory=list)
    neutral: list[str] = Field(min_length=1)
    latency_s: float = Field(0.0, ge=0.0)
    """Fixed delay per call, to stand in for a remote server in benchmarks."""
    stall_after: int | None = Field(None, ge=0)
    """Hang (never answer) after this many answered calls: a stuck server, for tests."""
    call_log: Path | None = None
    """Append one line per answered call to this file, to count calls across processes."""
    decision: DecisionTruth = DecisionTruth()

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
                fix="pass sim:PATH to an existing file, or plain `sim`",
            ) from error
        except (yaml.YAMLError, ValidationError) as error:
            first = str(error).splitlines()[0:3]
            raise ModelUnavailableError(
                f"sim:{path}: invalid simulator file: {' '.join(first)}",
                fix="follow the format of corpora/simulator/planted.yaml",
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

    @property
    def spec(self) -> str:
        return self._spec

    @property
    def identity(self) -> str:
        return self._identity

    @property
    def max_concurrency(self) -> int:
        return self._max_concurrency

    def region_of(self, question: str) -> Region | None:
        """The first region whose keywords the question mentions, if any."""
        words = set(_WORD.findall(question.lower()))
        for region in self.config.regions:
            if any(keyword.lower() in words for keyword in region.keywords):
                return region
        return None

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
        region = self.region_of(prompt)
        if region is not None and self.group_of(prompt) in region.target_groups:
            p -= region.decision_gap
        return min(0.98, max(0.02, p))

    def answer(self, question: str, seed: int | None) -> str:
        """The deterministic answer to ``question`` for a sampling ``seed``."""
        material = f"{question}\x00{seed}".encode()
        rng = random.Random(int.from_bytes(hashlib.sha256(material).digest()[:8], "big"))
        region = self.region_of(question)
        if region is None or rng.random() < self.config.noise:
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
