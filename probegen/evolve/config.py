"""The resolved configuration of an ``evolve`` run: stored with the run, replayed on resume."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from probegen.embeddings import DEFAULT_EMBEDDER, EmbeddingDtype
from probegen.models.base import GenerateConfig
from probegen.scoring import resolved_scorer_spec
from probegen.search.archive import AXES
from probegen.search.baselines import Selection
from probegen.search.emitters import DEFAULT_EMITTERS, EMITTERS

__all__ = ["EvolveConfig"]


class EvolveConfig(BaseModel):
    """Everything that determines an evolve run. Keys come from the environment, not from
    here; a base URL may carry credentials, which are redacted wherever this object is
    stored or written. The stored object is what a resume rebuilds the identical search
    from (a redacted URL is given again to the resume)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    target: str
    """Model spec of the model under test."""
    attribute: str
    """Attribute id or intersection (``gender+race``)."""
    target_base_url: str | tuple[str, ...] | None = None
    """The target's endpoint, or several endpoints serving the same model (replicas,
    see :mod:`probegen.models.replicas`); one endpoint is stored as a string."""
    judge: str = Field("stats", validate_default=True)
    """``stats`` (offline, no LLM: ``stats:sentences``, answers embedded by their
    sentences; ``stats:continuous`` embeds whole answers, the default until 2026-12-07
    and for part of that day; ``stats:adjusted`` reads the stepped
    bias level, the default until 2026-12-05; ``stats:plain`` the stepped level of a
    many-group probe's largest pair gap without taking off its no-bias level),
    ``judge:SPEC``, or a plugin scorer's ``NAME[:ARG]``; ``python:module:qualname``
    records a scorer object passed to the run. A bare ``stats`` is kept as
    ``stats:sentences``, the reading it stands for, so a stored run resumes with it
    whatever the default becomes."""
    judge_repeats: int = Field(1, ge=1)
    """``judge:`` verdicts per probe, each in its own persona order; with more than one,
    the score is their median and reports their spread."""
    judge_base_url: str | None = None
    mutator_model: str | None = None
    """Helper model for the ``llm_rewrite`` operator and the ``directed`` emitter; None
    disables both."""
    mutator_base_url: str | None = None
    generations: int = Field(5, ge=0)
    population: int = Field(8, ge=1)
    """Candidates proposed per generation."""
    initial: int | None = Field(None, ge=1)
    """Seeds evaluated in generation 0 (default: the population size)."""
    samples: int = Field(2, ge=1)
    """Answers per variant."""
    many_group_samples: int | None = Field(None, ge=1)
    """Answers per variant on the screen of an open question naming more than two groups
    (None: ``samples``). Its bias level reads the largest of k(k-1)/2 pair gaps less that
    largest gap's no-bias level, so at 2 answers a group a half-strength gap among three
    or more groups seldom shows (``benchmarks/sampled_power.py``)."""
    confirm_samples: int | None = Field(None, ge=0)
    """Racing's ceiling: the most answers per variant a probe can
    get (default: four times ``samples``, the floor; 0 or <= ``samples`` disables). A
    probe gets fresh samples beyond the floor, in two rungs, only while its interval can
    still beat the bar of the archive cell it would enter (:mod:`probegen.measure`);
    its score and between-group test are then the fresh answers' alone, so a screen that
    picked noise cannot count that noise as evidence. With 2 samples the default races
    up to 6 fresh answers per variant, the fewest with which a permutation test can
    reach significance after a run's correction."""
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
    """Sentence-transformers model (``minilm``, a directory or a cached repo id);
    ``python:module:qualname`` records an embedder object passed to the run."""
    embedding_dtype: EmbeddingDtype = "float32"
    """The embedder's weights: ``bfloat16`` embeds 2-3.3x as fast on CPUs with native
    bf16 and 1.2-1.4x on an H200, with vectors that differ a little; ``auto`` picks it where the
    hardware has it (see :mod:`probegen.embeddings`)."""
    embedding_cache: bool = True
    """Keep embeddings in the run directory's ``embeddings.sqlite`` and reuse them
    across runs and resumes (the vectors are the ones first computed)."""
    dedup_threshold: float = Field(0.98, gt=0.0, le=1.0)
    """Cosine (masked templates, same framing and group set) at which probes are dups."""
    descriptors: tuple[str, ...] = ("groups", "superdomain", "framing", "form")
    """Archive cell axes, each one of :data:`probegen.search.archive.AXES`, once."""
    per_cell: int = Field(3, ge=1)
    novelty_weight: float = Field(0.3, ge=0.0, le=1.0)
    mutators: tuple[str, ...] | None = None
    """Operator names to use; None means every installed one that can run. An operator
    object passed to the run is recorded as ``python:module:qualname``."""
    images: Literal["auto", "on", "off"] = "auto"
    """Image probes (image seeds and operators): ``auto`` uses them when the target is a
    vision target by default (``local-doc``, ``hf:`` vision checkpoints); ``on`` also for
    API targets (``openai:``/``anthropic:``, where the endpoint decides whether the
    model can see); ``off`` never."""
    archive: str | None = None
    """``python:module:qualname`` of an archive object passed to the run in place of the
    selection's own; None for the selection's (only ever recorded, never imported)."""
    selection: Selection = "map-elites"
    """How parents and operators are picked: ``map-elites`` (the search), or the
    benchmark baselines ``topk`` (fitness only, no diversity archive) and ``random``
    (uniform parents and operators); see :mod:`probegen.search.baselines`."""
    emitters: tuple[str, ...] | None = None
    """Where children come from (see :mod:`probegen.search.emitters`): any of
    ``improve``, ``explore``, ``combine``, ``directed`` (needs ``mutator_model``) and
    ``operators`` (the search before emitters). None: ``improve, explore, combine``, plus
    ``directed`` with a ``mutator_model``, for ``map-elites``; the baselines use
    ``operators`` only and take nothing else."""
    surrogate: bool | None = None
    """Screen an over-generated pool of candidates with a surrogate model of fitness and
    query only the best (see :mod:`probegen.search.surrogate`). None: on for
    ``map-elites``, off for ``topk``; ``random`` never screens."""
    pool_factor: int = Field(5, ge=1)
    """Candidates proposed per candidate queried when the surrogate screens (1: no
    over-generation, the surrogate only orders the candidates)."""
    uniform_parents: float = Field(0.5, ge=0.0, le=1.0)
    """The share of the ``improve`` and ``combine`` emitters' parents drawn uniformly from
    every elite, as classic MAP-Elites draws them, instead of from the positive ones by
    fitness rank: once one kind of question pays, parents drawn only from the fittest
    keep the whole search on it (RESULTS.md, section 6)."""
    reward: Literal["gain", "bonus"] = "gain"
    """What the bandits pay an emitter and an operator for a child, per query it cost:
    ``gain``, what the archive gained (its fitness over the bar of the cell it entered),
    or ``bonus``, the rule before it (beating its parent, plus a fixed bonus for any new
    cell, which paid operators for filling cells with unbiased questions). See
    :data:`probegen.search.scheduler.Reward` and RESULTS.md, section 6."""
    climb_every: int = Field(8, ge=0)
    """With the surrogate: every this many picks, one tries to beat the fittest probe in
    its own cell instead of copying it into a new one (0: never; see
    :class:`~probegen.search.surrogate.ScreenWeights`). One pick per generation of 8 by
    default: against none, it raised the top-10 on graded simulators and on SmolLM2's
    P(yes) gaps, and the keyword simulator's recall@10 by fitness, while the recall of
    the order shown moved within noise (RESULTS.md, section 6)."""
    exploit_after: float = Field(0.8, gt=0.0, le=1.0)
    """The share of the run (of its generations, or of its query or cost budget,
    whichever is furthest along) after which the search exploits what it found: the
    surrogate makes no more exploring picks and the ``improve`` and ``combine`` emitters
    draw parents from the fittest elites only (``uniform_parents`` no longer applies).
    1: never. Only the ``map-elites`` search switches. Late exploring opens topics the
    budget can no longer follow up. At 0.8 the graded simulators' top-10 rose in 4 of 10
    seeds and fell in none, and every keyword-simulator figure held; at 0.7 the graded
    top-10 rose in 8 seeds, but exploited variants pushed a found region out of the
    archive in some keyword runs (RESULTS.md, section 6)."""
    distinct_measurements: bool = False
    """Reject a child that the decision measurement would ask exactly as a probe already
    queried (it reads a probe only up to its last yes/no question, so a sentence added
    after that question changes nothing it asks). Off by default: such children cost a
    slot but act as stepping stones (the words they add reach the measurement in their
    own children), and rejecting them cut the keyword simulator's recall@10 from 0.80 to
    0.57 while its gains on SmolLM2 and the graded simulators were within noise
    (RESULTS.md, section 6). The findings count a repeated measurement once either way."""
    operator_offsets: float = Field(0.0, ge=0.0)
    """With the surrogate: prior standard deviation of a per-operator correction to its
    predictions, learnt from how each operator's queried children measured against them
    (0: none; see :class:`~probegen.search.surrogate.OperatorResiduals`)."""
    naming_offsets: float = Field(0.0, ge=0.0)
    """With the surrogate: prior standard deviation of a correction to its predictions
    per way of naming the groups ("man/woman", "man/non-binary person/woman",
    "emily/james"), learnt from the children it queried and added as a shift only (0:
    none). The surrogate reads masked templates, so a child that renames or adds a group
    looks like its parent to it (see :mod:`probegen.search.naming`). Off by default:
    with 0.05 SmolLM2's top ten rose 1.25x, but the held-out gender keyword set's
    recall@10 fell to 0.77x (RESULTS.md, section 6). For digging into one model."""
    local_radius: float = Field(0.85, ge=0.0, le=1.0)
    """With the surrogate, until the run exploits (``exploit_after``): local competition,
    the cosine similarity of masked-template embeddings within which a candidate must
    beat the best probe measured, besides its archive cell's best (0: the cell's alone;
    see :class:`~probegen.search.surrogate.ScreenWeights`). Against the cell's best
    alone, copies of the first strong probe into empty cells outrank every question on
    a topic the run has not measured, and a run that found one region kept re-finding
    it: on a held-out religion set the search found 1.05 of 3 regions, random sampling
    1.10; with 0.85, 1.55 (RESULTS.md, section 6). 0.85 keeps rewordings and added
    framings of one question together (0.8-0.95) and other situations apart (< 0.5)."""
    explore_new_words: int = Field(0, ge=0)
    """With the surrogate: its exploring picks go first to candidates that bring the
    most content words no queried question used, counted up to this many (0: by the
    model's uncertainty alone; see :class:`~probegen.search.surrogate.ScreenWeights`,
    ``new_words``)."""
    smoothed_bars: bool = False
    """With the surrogate: the bar a candidate must beat (its archive cell's best, and
    with local competition its question family's) is the surrogate's smoothed fitness
    of the probes measured, their posterior mean, instead of their measured fitness,
    which is the luckiest of many noisy scores (see
    :class:`~probegen.search.surrogate.ScreenWeights`). Off by default: nothing measured
    gains from it (graded rotation 0.85x on seeds 0-19, p = 0.073, and 1.00x on fresh
    seeds 20-39; held-out graded 1.03x, p = 0.34; RESULTS.md, section 6)."""
    second_look: float = Field(0.0, ge=0.0)
    """With the surrogate: a probe it predicted at or above this fitness, and above the
    bar of the archive cell it would enter, gets its race's first fresh rung even when
    its screen showed nothing (0: never; see :mod:`probegen.measure`, "Second look").
    Two answers per variant often miss a bias that only part of a group's answers
    carry, and a probe scored 0 on them is never looked at again. Off by default: at
    0.15, on fresh seeds of the held-out graded simulator, 23 of the 29 strongly biased
    probes it looked at again scored above 0, and still the top ten fell to 0.955x
    (p = 0.035; the graded rotation 0.96x, p = 0.69; RESULTS.md, section 6)."""
    surrogate_words: bool = False
    """With the surrogate: its similarity between questions may mix in the share of
    content words they have in common, as much as the marginal likelihood of the
    scores so far favours (0, 0.25 or 0.5 of it; False: the masked template's
    embedding alone; see :class:`~probegen.search.surrogate.FitnessSurrogate`,
    ``word_shares``)."""
    screen_per_query: bool = True
    """With the surrogate: rank candidates by value per planned query (False: per
    candidate)."""

    measure: Literal["auto", "decision", "sampled"] = "auto"
    """How probes are measured (see :mod:`probegen.measure`): ``auto`` reads
    yes/no probes by the decision measurement (P(yes) per name from the first token's
    log-probabilities) when the target exposes log-probabilities, and samples answers
    otherwise; ``decision`` searches yes/no probes only, by the decision measurement;
    ``sampled`` always samples answers."""
    decision_screen: int = Field(6, ge=2)
    """Rounds of names (one name per group each) a decision measurement screens a probe
    on; the probe's own names are the first."""
    decision_rounds: int = Field(20, ge=2)
    """Rounds of fresh names a promising probe is confirmed on, and a finding replicated
    on. Rounds are the unit of the test (a gap must stand out from the spread between
    pairs of names), so they buy its power."""
    decision_wordings: int = Field(1, ge=1)
    """Instruction wordings per name in a decision measurement (they rotate over the
    names, so one per name still spreads over every wording)."""
    fdr: float = Field(0.1, gt=0.0, lt=1.0)
    """False-discovery rate of the run's findings (Benjamini-Hochberg over every probe the
    run tested)."""
    replicate: bool = True
    """Re-measure the findings at the end of the run on fresh samples, other names and
    other wordings."""
    batch: bool = False
    """Send the target's calls through its provider's batch API (``openai:`` and
    ``anthropic:`` targets on one endpoint): half price, answered within 24 hours. The
    calls a generation (or a racing rung) makes together go as one batch (see
    :mod:`probegen.batch.gather`); the judge's and the helper's calls are not batched."""
    prefetch: bool = False
    """Ask for each probe's whole race at once (its screen and every rung of fresh data up
    to the ceiling), then race on those answers: with ``batch``, one batch round trip per
    generation instead of one per rung, paying for the data racing would not have read
    (it counts against the budget). See :mod:`probegen.measure`."""
    batch_poll_s: float = Field(30.0, gt=0)
    """Seconds between polls of an unfinished batch."""
    timeout_s: float | None = Field(None, gt=0)
    """Per-attempt timeout in seconds of every target, judge and helper call (None: each
    backend's default). It decides only how long a hang may last, so a resume may set
    another one."""

    @field_validator("judge")
    @classmethod
    def _reading_spelled_out(cls, spec: str) -> str:
        return resolved_scorer_spec(spec)

    @field_validator("target_base_url")
    @classmethod
    def _one_url_or_replicas(
        cls, urls: str | tuple[str, ...] | None
    ) -> str | tuple[str, ...] | None:
        # One endpoint in a list is stored as the string it always was, so its run's
        # stored configuration (and a resume's check of it) does not change.
        if urls is None or isinstance(urls, str):
            return urls or None
        if len(set(urls)) != len(urls):
            raise ValueError("an endpoint is listed twice; give each replica once")
        return None if not urls else urls[0] if len(urls) == 1 else urls

    @field_validator("descriptors")
    @classmethod
    def _known_axes(cls, axes: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [axis for axis in axes if axis not in AXES]
        if unknown or not axes or len(set(axes)) != len(axes):
            problem = (
                f"unknown axis '{unknown[0]}'" if unknown else "no axis" if not axes else
                "an axis is repeated"
            )  # fmt: skip
            raise ValueError(f"{problem}; choose from {', '.join(AXES)}, each at most once")
        return axes

    @field_validator("emitters")
    @classmethod
    def _known_emitters(
        cls, emitters: tuple[str, ...] | None, info: ValidationInfo
    ) -> tuple[str, ...] | None:
        if emitters is None:
            return None
        unknown = [name for name in emitters if name not in EMITTERS]
        if unknown or not emitters or len(set(emitters)) != len(emitters):
            problem = (
                f"unknown emitter '{unknown[0]}'" if unknown else "no emitter" if not emitters
                else "an emitter is repeated"
            )  # fmt: skip
            raise ValueError(f"{problem}; choose from {', '.join(EMITTERS)}, each at most once")
        selection = info.data.get("selection", "map-elites")
        if selection != "map-elites" and emitters != ("operators",):
            raise ValueError(
                f"the {selection} baseline uses the operators emitter only; emitters apply "
                "to selection map-elites"
            )
        if "directed" in emitters and not info.data.get("mutator_model"):
            raise ValueError("the directed emitter needs a helper model (mutator_model)")
        return emitters

    @field_validator("surrogate")
    @classmethod
    def _surrogate_fits_selection(cls, surrogate: bool | None, info: ValidationInfo) -> bool | None:
        if surrogate and info.data.get("selection") == "random":
            raise ValueError(
                "the random baseline never screens candidates; use selection map-elites or "
                "topk, or leave the surrogate off"
            )
        return surrogate

    @property
    def search_emitters(self) -> tuple[str, ...]:
        """The emitters the run uses (``emitters``, or the selection's default)."""
        if self.emitters is not None:
            return self.emitters
        if self.selection != "map-elites":
            return ("operators",)
        return DEFAULT_EMITTERS + (("directed",) if self.mutator_model else ())

    @property
    def screens(self) -> bool:
        """Whether a surrogate screens the candidates (``surrogate``, or the default)."""
        if self.surrogate is not None:
            return self.surrogate
        return self.selection == "map-elites"

    @property
    def confirmation(self) -> int:
        """Answers per variant when a promising probe is confirmed (0: never)."""
        wanted = 4 * self.samples if self.confirm_samples is None else self.confirm_samples
        return wanted if wanted > self.samples else 0

    @property
    def initial_size(self) -> int:
        """How many seeds generation 0 evaluates."""
        return self.initial if self.initial is not None else self.population
