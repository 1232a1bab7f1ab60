"""The resolved configuration of an ``evolve`` run: stored with the run, replayed on resume."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from probegen.embeddings import DEFAULT_EMBEDDER
from probegen.models.base import GenerateConfig
from probegen.search.baselines import Selection

__all__ = ["EvolveConfig"]


class EvolveConfig(BaseModel):
    """Everything that determines an evolve run. Secrets never go here (keys come from
    the environment), so the whole object is stored with the run and ``--resume``
    rebuilds the identical search from it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    target: str
    """Model spec of the model under test."""
    attribute: str
    """Attribute id or intersection (``gender+race``)."""
    target_base_url: str | None = None
    judge: str = "stats"
    """``stats`` (offline, no LLM) or ``judge:SPEC``."""
    judge_base_url: str | None = None
    mutator_model: str | None = None
    """Helper model for the ``llm_rewrite`` operator; None disables it."""
    mutator_base_url: str | None = None
    generations: int = Field(5, ge=0)
    population: int = Field(8, ge=1)
    """Candidates proposed per generation."""
    initial: int | None = Field(None, ge=1)
    """Seeds evaluated in generation 0 (default: the population size)."""
    samples: int = Field(2, ge=1)
    """Answers per variant."""
    confirm_samples: int | None = Field(None, ge=0)
    """Answers per variant for a probe that scored above 0, which is then re-scored
    (default: twice ``samples``; 0 or <= ``samples`` disables). A handful of samples is
    noisy, and a search over many probes finds noise flukes; confirming the promising
    ones with more samples keeps them from taking over the archive."""
    budget: int | None = Field(None, ge=1)
    """Maximum target queries (variant x sample), cached ones included."""
    cost_budget: float | None = Field(None, gt=0)
    """Maximum spend in USD on target and judge calls, where priced."""
    seed: int = 0
    seeds_file: str | None = None
    """A seeds file (``seeds.jsonl`` format) instead of the shipped seeds."""
    generate: GenerateConfig = GenerateConfig(temperature=0.7, max_tokens=100, seed=0)
    """Target sampling parameters; sample *i* uses ``generate.seed + i``."""
    system_prompt: str | None = None
    embedder: str = DEFAULT_EMBEDDER
    dedup_threshold: float = Field(0.98, gt=0.0, le=1.0)
    """Cosine (masked templates, same framing and group set) at which probes are dups."""
    descriptors: tuple[str, ...] = ("groups", "superdomain", "framing", "form")
    per_cell: int = Field(3, ge=1)
    novelty_weight: float = Field(0.3, ge=0.0, le=1.0)
    mutators: tuple[str, ...] | None = None
    """Operator names to use; None means every installed one that can run."""
    images: Literal["auto", "on", "off"] = "auto"
    """Image probes (image seeds and operators): ``auto`` uses them when the target is a
    vision target by default (``local-doc``, ``hf:`` vision checkpoints); ``on`` also for
    API targets (``openai:``/``anthropic:``, where the endpoint decides whether the
    model can see); ``off`` never."""
    selection: Selection = "map-elites"
    """How parents and operators are picked: ``map-elites`` (the search), or the
    benchmark baselines ``topk`` (fitness only, no diversity archive) and ``random``
    (uniform parents and operators); see :mod:`probegen.search.baselines`."""

    @property
    def confirmation(self) -> int:
        """Answers per variant when a promising probe is confirmed (0: never)."""
        wanted = 2 * self.samples if self.confirm_samples is None else self.confirm_samples
        return wanted if wanted > self.samples else 0

    @property
    def initial_size(self) -> int:
        """How many seeds generation 0 evaluates."""
        return self.initial if self.initial is not None else self.population
