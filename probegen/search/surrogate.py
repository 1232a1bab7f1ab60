"""Surrogate pre-screening: a cheap model of fitness decides which candidates get queries.

A target query is the search's scarce resource; proposing a candidate costs nothing but
CPU. So each generation the scheduler over-generates a *pool* of candidates (``pool
factor`` x the population) and queries only the ones a surrogate model of fitness ranks
best. The model is Gaussian-process regression over the unit embeddings of the
candidates' *masked* templates (the run's embedder, placeholders masked as for
deduplication, so a name swap is the same point), fitted on every probe scored so far:

- kernel ``s2 * exp(-(1 - cos(a, b)) / l)``: an RBF kernel on the unit sphere, where two
  questions about the same situation share their fitness and unrelated ones do not;
- constant mean (the mean fitness so far), signal variance ``s2`` the variance of the
  fitness (at least ``prior_sd ** 2``, so that before the first positive probe the model
  is uncertain away from the data instead of certain everything scores 0), observation
  noise a share of ``s2`` (scores are noisy: a fluke is an observation, not a truth);
- the length-scale ``l`` and the noise share are picked each time from a small grid by
  the log marginal likelihood (deterministic: ties go to the first in the grid);
- optionally (``word_shares``) the similarity ``cos(a, b)`` is a mix
  ``(1 - w) * cos(a, b) + w * words(a, b)``, where ``words`` is the cosine of the two
  questions' sets of content words (:func:`probegen.search.words.content_words`) weighted
  by inverse document frequency over the probes scored so far, with ``w`` picked from
  the grid as well. The weighting matters: unweighted, a child that adds a framing's
  common words moved away from its parent, and the held-out graded set's top-10 fell
  (RESULTS.md, section 6); a word most questions use says little about which. A
  sentence embedding is dominated by a question's shape, while bias often hangs on one
  word (the occupation, the relation); with a word term the model can learn that
  questions sharing "nanny" score alike whatever their shape, and the marginal
  likelihood decides, run by run, whether it explains the scores better than shape.

**Ranking** (:func:`select_batch`): each candidate's acquisition is its expected
improvement over the incumbent of the archive cell it would land in (the cell's best
fitness; 0 for an empty cell) or, with local competition (``ScreenWeights.local_radius``),
over the best fitness measured near it when that is higher, plus a bonus for an empty
cell and a novelty bonus (its distance to the probes already queried), divided by its
planned cost relative to the pool's median (value per query, as the emitters are
rewarded; ``ScreenWeights.per_query``).
Every fourth pick *explores* instead: the candidate with the largest posterior
uncertainty. Optionally (``ScreenWeights.climb_every``) a pick *climbs*: a child that
stays in its parent's cell, from the fittest parent, an attempt to improve on the best
probe rather than to copy it into a new cell. Optionally
(``ScreenWeights.operator_sd``) the prediction is corrected per mutation operator by
:class:`OperatorResiduals`: the embedding of a child says what it is about, not what
its operator did to it, so a model of embeddings cannot learn that one operator's
children score above their neighbours and another's below; a per-operator offset can,
from the children it queried. The batch is
chosen greedily, and after each pick the model is told to expect that candidate's predicted
fitness ("kriging believer"): the variance of its neighbours shrinks and its cell's
bar rises, so one generation does not spend itself on eight near-copies of one idea.

:func:`rank_correlation` reports how well the predictions ranked the measured fitness
(Spearman's rho, from scipy) so a run can say whether its surrogate was worth having.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import linalg, sparse, stats

__all__ = [
    "SURROGATE_WORD_SHARES",
    "FitnessSurrogate",
    "OperatorResiduals",
    "RankCorrelation",
    "ScreenWeights",
    "Selection",
    "expected_improvement",
    "inverse_document_frequency",
    "rank_correlation",
    "select_batch",
    "word_similarity",
]

Array = npt.NDArray[np.float64]
_Bags = Sequence[Collection[str]]

_LENGTHSCALES = (0.05, 0.1, 0.2, 0.4, 0.8)
_NOISE_SHARES = (0.05, 0.2, 0.5)
_JITTER = 1e-8
SURROGATE_WORD_SHARES = (0.0, 0.25, 0.5)
"""The word shares a surrogate with a word term chooses among (``evolve``'s
``surrogate_words``): 0 keeps the embedding alone in reach when words explain nothing."""
_DECIMALS = 12  # acquisitions are rounded before ranking, so float noise cannot reorder ties


class FitnessSurrogate:
    """Gaussian-process regression of fitness over unit embedding vectors.

    Args:
        prior_sd: The least signal standard deviation the model assumes (fitness is in
            [0, 1]; 0.1 keeps it curious while every probe so far scored 0).
        max_points: Training points kept when fitting; past it the positive probes and
            the most recent others are kept (exact GP fitting is cubic in the points).
        word_shares: The shares of the similarity given to shared content words that
            the fit chooses among (module docstring); ``(0.0,)``, the default: the
            embedding alone. With any share above 0, :meth:`observe` and
            :meth:`posterior` take each question's content words.

    Raises:
        ValueError: On a non-positive ``prior_sd`` or ``max_points``, or a word share
            outside [0, 1).
    """

    def __init__(
        self,
        *,
        prior_sd: float = 0.1,
        max_points: int = 1500,
        word_shares: Sequence[float] = (0.0,),
    ) -> None:
        if prior_sd <= 0 or max_points < 1:
            raise ValueError(
                f"prior_sd ({prior_sd}) and max_points ({max_points}) must be positive"
            )
        if not word_shares or not all(0.0 <= w < 1.0 for w in word_shares):
            raise ValueError(f"word_shares ({list(word_shares)}) must each be in [0, 1)")
        self.prior_sd = float(prior_sd)
        self.max_points = max_points
        self.word_shares = tuple(float(w) for w in word_shares)
        self._x: list[Array] = []
        self._y: list[float] = []
        self._words: list[Collection[str]] = []
        self._fitted: _Fit | None = None
        self._smoothed: Array | None = None

    @property
    def reads_words(self) -> bool:
        """Whether the model's similarity has a word term (callers give the words)."""
        return any(w > 0 for w in self.word_shares)

    def __len__(self) -> int:
        return len(self._y)

    def __repr__(self) -> str:
        return f"FitnessSurrogate(n={len(self)}, prior_sd={self.prior_sd})"

    def observe(
        self,
        vectors: npt.ArrayLike,
        fitness: Sequence[float],
        words: Sequence[Collection[str]] | None = None,
    ) -> None:
        """Add scored probes: one unit vector (row) and one fitness each, and with a
        word term (``word_shares``) each question's content words.

        Raises:
            ValueError: If the counts differ, a fitness is not finite, or a model with
                a word term is given no words.
        """
        rows = np.atleast_2d(np.asarray(vectors, dtype=np.float64))
        if len(fitness) == 0:
            return
        if rows.shape[0] != len(fitness):
            raise ValueError(f"{rows.shape[0]} vectors for {len(fitness)} fitness values")
        if not all(math.isfinite(f) for f in fitness):
            raise ValueError(f"fitness values must be finite, got {list(fitness)}")
        self._words.extend(self._checked_words(words, len(fitness)))
        self._x.extend(rows)
        self._y.extend(float(f) for f in fitness)
        self._fitted = None
        self._smoothed = None

    def _checked_words(
        self, words: Sequence[Collection[str]] | None, count: int
    ) -> Sequence[Collection[str]]:
        if not self.reads_words:
            return [()] * count
        if words is None or len(words) != count:
            raise ValueError(
                f"a surrogate with word_shares {list(self.word_shares)} needs one set of "
                f"words per vector ({count}), got {None if words is None else len(words)}"
            )
        return words

    @property
    def hyperparameters(self) -> dict[str, float]:
        """The fitted ``lengthscale``, ``signal_var``, ``noise_var`` and ``mean``."""
        fit = self._fit()
        return {
            "lengthscale": fit.lengthscale,
            "signal_var": fit.signal,
            "noise_var": fit.noise,
            "mean": fit.mean,
            "word_share": fit.word_share,
        }

    def predict(
        self, vectors: npt.ArrayLike, words: Sequence[Collection[str]] | None = None
    ) -> tuple[Array, Array]:
        """Posterior mean and standard deviation of the fitness at each row of ``vectors``."""
        mean, cov = self.posterior(vectors, words)
        return mean, np.sqrt(np.clip(np.diag(cov), 0.0, None))

    def posterior(
        self, vectors: npt.ArrayLike, words: Sequence[Collection[str]] | None = None
    ) -> tuple[Array, Array]:
        """Posterior mean (n,) and covariance (n, n) of the fitness at ``vectors`` (with
        a word term, of the questions with these ``words``)."""
        query = np.atleast_2d(np.asarray(vectors, dtype=np.float64))
        asked = list(self._checked_words(words, len(query)))
        fit = self._fit()
        prior = fit.kernel(query, query, asked, asked)
        if fit.x is None or fit.factor is None or fit.alpha is None:
            return np.full(len(query), fit.mean), prior
        cross = fit.kernel(query, fit.x, asked, fit.words)  # (m, n)
        mean = fit.mean + cross @ fit.alpha
        solved = linalg.solve_triangular(fit.factor, cross.T, lower=True)
        return mean, prior - solved.T @ solved

    def posterior_mean(
        self, vectors: npt.ArrayLike, words: Sequence[Collection[str]] | None = None
    ) -> Array:
        """Posterior mean alone at each row of ``vectors`` (no covariance: linear in the
        rows, where :meth:`posterior` is quadratic)."""
        query = np.atleast_2d(np.asarray(vectors, dtype=np.float64))
        asked = list(self._checked_words(words, len(query)))
        fit = self._fit()
        if fit.x is None or fit.alpha is None:
            return np.full(len(query), fit.mean)
        return np.asarray(fit.mean + fit.kernel(query, fit.x, asked, fit.words) @ fit.alpha)

    def smoothed(self) -> Array:
        """The posterior mean at every probe observed, in the order observed: each score
        with its noise shrunk toward what its neighbours scored. The best of many noisy
        scores is mostly luck (a half-strength question measured at 0.8), and a bar set
        by it asks a child to beat that luck; see ``ScreenWeights.smoothed_bars``."""
        if self._smoothed is None:
            self._smoothed = (
                self.posterior_mean(np.asarray(self._x), self._words) if self._y else np.zeros(0)
            )
        return self._smoothed

    @property
    def noise(self) -> float:
        """The fitted observation-noise variance."""
        return self._fit().noise

    def local_best(self, vectors: npt.ArrayLike, radius: float, *, smoothed: bool = False) -> Array:
        """Per row of ``vectors``, the best fitness observed within cosine similarity
        ``radius`` of it (0 where nothing observed is that close); with ``smoothed``,
        the best of the observed probes' :meth:`smoothed` fitness instead."""
        query = np.atleast_2d(np.asarray(vectors, dtype=np.float64))
        if not self._y:
            return np.zeros(len(query))
        near = query @ np.asarray(self._x).T >= radius
        fitness = self.smoothed() if smoothed else np.asarray(self._y)
        return np.asarray(np.max(np.where(near, fitness, 0.0), axis=1))

    def _training(self) -> tuple[Array, Array, list[Collection[str]]]:
        x, y = np.asarray(self._x), np.asarray(self._y)
        if len(y) <= self.max_points:
            return x, y, list(self._words)
        positive = np.flatnonzero(y > 0)[-self.max_points :]
        rest = np.flatnonzero(y <= 0)[-(self.max_points - len(positive)) :]
        keep = np.sort(np.concatenate([positive, rest])) if len(rest) else positive
        return x[keep], y[keep], [self._words[i] for i in keep]

    def _fit(self) -> _Fit:
        if self._fitted is not None:
            return self._fitted
        if not self._y:
            self._fitted = _Fit(self.prior_sd**2, 0.2, self.prior_sd**2 * 0.2, 0.0)
            return self._fitted
        x, y, words = self._training()
        mean = float(np.mean(y))
        signal = max(float(np.var(y)), self.prior_sd**2)
        shape = np.clip(x @ x.T, -1.0, 1.0)
        if self.reads_words:
            # Words weigh by their rarity among the probes scored so far, refitted with them.
            idf = inverse_document_frequency(words)
            shared = word_similarity(words, words, idf)
        else:
            idf, shared = _every_word_alike, np.zeros_like(shape)
        best: tuple[float, _Fit] | None = None
        for word_share in self.word_shares:
            similarity = (1.0 - word_share) * shape + word_share * shared
            for lengthscale in _LENGTHSCALES:
                gram = signal * np.exp(-(1.0 - similarity) / lengthscale)
                for share in _NOISE_SHARES:
                    noise = share * signal
                    factor = linalg.cholesky(
                        gram + (noise + _JITTER) * np.eye(len(y)), lower=True, check_finite=False
                    )
                    alpha = linalg.cho_solve((factor, True), y - mean, check_finite=False)
                    evidence = float(
                        -0.5 * (y - mean) @ alpha
                        - np.log(np.diag(factor)).sum()
                        - 0.5 * len(y) * math.log(2 * math.pi)
                    )
                    fit = _Fit(
                        signal, lengthscale, noise, mean, x, factor, alpha, word_share, words, idf
                    )
                    if best is None or evidence > best[0] + 1e-9:
                        best = (evidence, fit)
        assert best is not None
        self._fitted = best[1]
        return self._fitted


def _every_word_alike(word: str) -> float:
    return 1.0


@dataclass(frozen=True)
class _Fit:
    signal: float
    lengthscale: float
    noise: float
    mean: float
    x: Array | None = None
    factor: Array | None = None
    alpha: Array | None = None
    word_share: float = 0.0
    words: Sequence[Collection[str]] = ()
    idf: Callable[[str], float] = _every_word_alike

    def kernel(self, a: Array, b: Array, a_words: _Bags, b_words: _Bags) -> Array:
        similarity = np.clip(a @ b.T, -1.0, 1.0)
        if self.word_share > 0:
            similarity = (1.0 - self.word_share) * similarity + self.word_share * word_similarity(
                a_words, b_words, self.idf
            )
        return np.asarray(self.signal * np.exp(-(1.0 - similarity) / self.lengthscale))


def inverse_document_frequency(bags: Sequence[Collection[str]]) -> Callable[[str], float]:
    """Smoothed inverse document frequency over ``bags`` (scikit-learn's formula,
    ``ln((1 + n) / (1 + df)) + 1``): a word in every question weighs 1, one in none
    (a candidate's new word) the most."""
    counts: dict[str, int] = {}
    for bag in bags:
        for word in bag:
            counts[word] = counts.get(word, 0) + 1
    n = len(bags)
    return lambda word: math.log((1 + n) / (1 + counts.get(word, 0))) + 1.0


def word_similarity(
    a: Sequence[Collection[str]],
    b: Sequence[Collection[str]],
    weight: Callable[[str], float] = _every_word_alike,
) -> Array:
    """Cosine of two lists of word sets as bags of words, each word counted ``weight(word)``
    (by default 1: ``|A & B| / sqrt(|A| |B|)``), for each pair (0 where either set is
    empty), an (len(a), len(b)) matrix. A dot product of unit vectors, so a mix of it
    with the embedding's cosine keeps the kernel valid."""
    vocabulary: dict[str, int] = {}
    for bag in (*a, *b):
        for word in bag:
            vocabulary.setdefault(word, len(vocabulary))

    def unit_rows(bags: Sequence[Collection[str]]) -> sparse.csr_matrix:
        rows, columns, values = [], [], []
        for i, bag in enumerate(bags):
            norm = math.sqrt(sum(weight(word) ** 2 for word in bag))
            for word in bag:
                rows.append(i)
                columns.append(vocabulary[word])
                values.append(weight(word) / norm)
        return sparse.csr_matrix(
            (values, (rows, columns)), shape=(len(bags), max(len(vocabulary), 1))
        )

    return np.asarray((unit_rows(a) @ unit_rows(b).T).toarray(), dtype=np.float64)


def expected_improvement(mean: Array, sd: Array, bar: Array) -> Array:
    """Expected improvement of a normal ``N(mean, sd**2)`` over ``bar``, elementwise."""
    sd = np.maximum(sd, 1e-12)
    z = (mean - bar) / sd
    return np.asarray((mean - bar) * stats.norm.cdf(z) + sd * stats.norm.pdf(z))


class OperatorResiduals:
    """How far each operator's children measured from the surrogate's predictions.

    A random effect per operator: its offset has prior ``N(0, prior_sd**2)`` and each
    queried child's residual (measured minus predicted fitness) is an observation of it
    with the variance of every operator's residuals together, so an operator with few
    children stays near 0 and uncertain (its candidates' expected improvement grows
    with that uncertainty: optimism for what the screen has not tried), and one whose
    children keep beating, or missing, their predictions moves the screen's ranking.
    The posterior is the normal-normal conjugate one (scipy's normal for nothing more
    than the arithmetic would be ceremony; see :meth:`estimate`). The key can be any
    label: the scheduler keeps a second instance keyed by how a probe names its groups
    (:func:`~probegen.search.naming.naming_key`).
    """

    def __init__(self, prior_sd: float = 0.1, *, min_noise_sd: float = 0.05) -> None:
        if prior_sd <= 0:
            raise ValueError("OperatorResiduals: prior_sd must be > 0")
        self.prior_sd = prior_sd
        self.min_noise_sd = min_noise_sd
        self._residuals: dict[str, list[float]] = {}

    def __repr__(self) -> str:
        counts = {op: len(r) for op, r in sorted(self._residuals.items())}
        return f"OperatorResiduals(prior_sd={self.prior_sd}, observed={counts})"

    def observe(self, operator: str, measured: float, predicted: float) -> None:
        self._residuals.setdefault(operator, []).append(float(measured) - float(predicted))

    @property
    def noise_sd(self) -> float:
        """The spread of one child's residual around its operator's offset."""
        every = [r for residuals in self._residuals.values() for r in residuals]
        spread = float(np.std(every, ddof=1)) if len(every) > 2 else 0.0
        return max(spread, self.min_noise_sd)

    def estimate(self, operator: str) -> tuple[float, float]:
        """Posterior mean and standard deviation of ``operator``'s offset."""
        residuals = self._residuals.get(operator, [])
        precision = 1.0 / self.prior_sd**2 + len(residuals) / self.noise_sd**2
        mean = (sum(residuals) / self.noise_sd**2) / precision
        return mean, math.sqrt(1.0 / precision)

    def as_dict(self) -> dict[str, dict[str, float]]:
        """Per operator: children observed and the offset's posterior (what the screen learnt)."""
        return {
            op: dict(zip(("n", "mean", "sd"), (len(r), *self.estimate(op)), strict=True))
            for op, r in sorted(self._residuals.items())
        }


@dataclass(frozen=True)
class ScreenWeights:
    """How much besides expected improvement a candidate's acquisition counts.

    Attributes:
        empty_cell: Bonus for a candidate whose archive cell is empty (diversity is half
            of what the archive is for; in fitness units).
        novelty: Weight of its novelty (mean cosine distance, in [0, 1], to the nearest
            probes already queried).
        explore_every: Every this many picks, one goes to the candidate the model knows
            least about (the largest posterior standard deviation) instead of the best
            acquisition; 0 never. Expected improvement alone exploits: once one region
            pays, its neighbours' predictions dwarf an unexplored topic's (which sits at
            the prior mean with the small variance of mostly-zero fitness), and a region
            the run has not touched is never queried (RESULTS.md, section 6).
        climb_every: Every this many picks (the middle one of each run of them, ahead of
            an exploring pick due there), one goes to an improvement attempt: among
            candidates that stay in the archive cell of a parent with positive fitness,
            one of the fittest parent (ties by the
            prediction plus its uncertainty); 0 (this class's default) never; ``evolve``
            uses 8. Expected improvement
            over each cell's incumbent values a child that copies a strong probe into a
            new cell at the parent's fitness far above one that could beat the parent in
            its own cell (the model predicts the parent's neighbours at or below it, with
            little uncertainty), so the search fills cells around its best probe and
            seldom climbs past it. Every fourth pick climbing reaches strongly biased
            probes more often on graded simulators but crowds the top-10 with one region
            on the keyword simulator; one in eight was no worse anywhere and better on
            most figures, so it is ``evolve``'s default (RESULTS.md, section 6).
        per_query: Divide each acquisition by the candidate's planned cost relative to
            the pool's median (value per query, as the emitters are paid). The planned
            cost is the race's ceiling, which racing seldom pays, and it is highest for
            the decision measurement's yes/no probes (52 queries against 16 for an open
            question, while they spend 19 against 8 on average); turning it off helps
            graded simulators only together with climbing (RESULTS.md, section 6).
        operator_sd: Prior standard deviation of each mutation operator's offset to the
            predictions (:class:`OperatorResiduals`); 0 (the default): no offsets.
        naming_sd: Prior standard deviation of each way of naming the groups' offset to
            the predictions (:func:`~probegen.search.naming.naming_key`; an
            :class:`OperatorResiduals` keyed by naming); 0 (this class's default): no
            offsets. Only the learnt shift is added: unlike ``operator_sd``'s, its
            uncertainty is not paid out as optimism. With the optimism, the many
            namings the screen had not tried outranked what it had measured, and the
            held-out graded simulator's top ten fell to 0.85x; as a shift alone it
            held there (1.06x) and SmolLM2's top ten rose 1.25x, but a keyword
            simulator's recall@10 fell to 0.77x, so ``evolve`` leaves it off
            (RESULTS.md, section 6).
        new_words: An exploring pick goes first to the candidates that bring the most
            content words no queried question used, counted up to this many, and among
            them to the one the model knows least about; 0 (the default): by the
            model's uncertainty alone. The model embeds whole questions, and a sentence
            embedding is dominated by a question's shape, so a question on a new
            subject in a familiar shape ("torn between majoring in nursing and ...")
            sits among questions measured at 0 and is never picked
            (:mod:`probegen.search.words`; RESULTS.md, section 6).
        local_radius: Local competition: a candidate's bar is also the best fitness
            measured within this cosine similarity of it (its question family), not
            only its archive cell's; 0 (the default): the cell's alone. Against the
            cell's bar, a copy of a strong probe into an empty cell expects to gain
            the whole of the strong probe's fitness and outranks every question on a
            topic the run has not measured, so a search that found one region spends
            its picks re-finding it (RESULTS.md, section 6). Each pick raises the bar
            of the candidates within the radius of it to its prediction, as it raises
            its cell's.
        smoothed_bars: The bars (a cell's best, and with local competition a question
            family's) are the surrogate's posterior mean at the probes measured
            (:meth:`FitnessSurrogate.smoothed`) instead of their measured fitness; False
            (the default): measured. A cell's best measured score is the luckiest of its
            noisy measurements: a half-strength question measured at 0.8 sets a bar that
            a child one level up, predicted near its parent, cannot be expected to beat,
            so the screen passes over the children that climb (RESULTS.md, section 6,
            "One step up from a plateau"). The caller computes the cells' bars
            (``bars``); this switches the local ones. Off in ``evolve`` unless asked
            for (``EvolveConfig.smoothed_bars``): on graded rotation seeds 0-19 the
            top ten fell to 0.85x (p = 0.073), on fresh seeds 20-39 it held (1.00x),
            and the held-out set's moved within noise (1.03x); the screen still passed
            over ``compose``'s climbing children, which the model predicts low, and
            queried one of ``entity_swap``'s nine (RESULTS.md, section 6, "Bars set by
            luck").
    """

    empty_cell: float = 0.02
    novelty: float = 0.05
    explore_every: int = 4
    climb_every: int = 0
    per_query: bool = True
    operator_sd: float = 0.0
    naming_sd: float = 0.0
    local_radius: float = 0.0
    new_words: int = 0
    smoothed_bars: bool = False


@dataclass(frozen=True)
class Selection:
    """What :func:`select_batch` chose: pool positions in order, with their predictions."""

    chosen: list[int]
    mean: list[float]
    """Predicted fitness of every pool candidate (before the batch was chosen; the
    surrogate's own, without operator offsets)."""
    sd: list[float]
    acquisition: list[float]
    """Each chosen candidate's acquisition when it was picked (aligned with ``chosen``)."""


def select_batch(
    surrogate: FitnessSurrogate,
    vectors: npt.ArrayLike,
    *,
    n: int,
    cells: Sequence[tuple[str, ...]],
    bars: dict[tuple[str, ...], float],
    novelty: Sequence[float],
    costs: Sequence[float],
    weights: ScreenWeights = ScreenWeights(),
    climbing: Sequence[float] | None = None,
    offsets: Sequence[tuple[float, float]] | None = None,
    new_words: Sequence[int] | None = None,
    words: Sequence[Collection[str]] | None = None,
) -> Selection:
    """Choose up to ``n`` pool candidates by acquisition (module docstring).

    Args:
        surrogate: The fitted model.
        vectors: One unit embedding per pool candidate.
        n: How many to choose.
        cells: Each candidate's archive cell.
        bars: Best fitness of each filled cell (a cell absent here is empty).
        novelty: Each candidate's novelty in [0, 1].
        costs: Each candidate's planned queries (> 0).
        weights: The bonuses besides expected improvement.
        climbing: Per candidate, the fitness of the parent whose archive cell it stays
            in, when that is positive, else 0 (it cannot be a climbing pick); None: no
            climbing picks.
        offsets: Per candidate, the posterior mean and standard deviation of its
            operator's offset (:class:`OperatorResiduals`), added to the prediction and
            to its uncertainty; None: none.
        new_words: Per candidate, how many of its content words no queried question
            used (read only with ``weights.new_words``); None: not counted.
        words: Per candidate, its content words, for a surrogate with a word term
            (``FitnessSurrogate.reads_words``); None for one without.
    """
    mean, cov = surrogate.posterior(vectors, words)
    size = len(mean)
    if not len(cells) == len(novelty) == len(costs) == size:
        raise ValueError("select_batch: give one cell, novelty and cost per vector")
    if climbing is not None and len(climbing) != size:
        raise ValueError("select_batch: give one climbing fitness per vector")
    if offsets is not None and len(offsets) != size:
        raise ValueError("select_batch: give one operator offset per vector")
    if new_words is not None and len(new_words) != size:
        raise ValueError("select_batch: give one count of new words per vector")
    unseen = (
        np.minimum(np.asarray(new_words, dtype=np.int64), weights.new_words)
        if new_words is not None and weights.new_words > 0
        else np.zeros(size, dtype=np.int64)
    )
    offset = np.asarray(offsets, dtype=np.float64).reshape(size, 2) if offsets else None
    shift, shift_sd = (offset[:, 0], offset[:, 1]) if offset is not None else (0.0, 0.0)
    predicted = mean.tolist()  # the model's own prediction, which residuals are taken of
    mean = mean + shift
    cost = np.asarray(costs, dtype=np.float64)
    relative = cost / float(np.median(cost)) if size and weights.per_query else np.ones(size)
    climb = np.round(np.asarray(climbing if climbing is not None else [0.0] * size), _DECIMALS)
    filled = dict(bars)
    rows = np.atleast_2d(np.asarray(vectors, dtype=np.float64))
    local = (
        surrogate.local_best(rows, weights.local_radius, smoothed=weights.smoothed_bars)
        if weights.local_radius > 0
        else np.zeros(size)
    )
    noise = surrogate.noise
    initial_sd = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    chosen: list[int] = []
    picked_acquisition: list[float] = []
    open_ = np.ones(size, dtype=bool)
    for _ in range(min(n, size)):
        model_sd = np.sqrt(np.clip(np.diag(cov), 0.0, None))
        sd = model_sd if offset is None else np.sqrt(model_sd**2 + shift_sd**2)
        bar = np.maximum(np.array([filled.get(cell, 0.0) for cell in cells]), local)
        empty = np.array([cell not in filled for cell in cells], dtype=np.float64)
        gain = expected_improvement(mean, sd, bar)
        value = gain + weights.empty_cell * empty + weights.novelty * np.asarray(novelty)
        score = np.round(np.where(open_, value / relative, -np.inf), _DECIMALS)
        pick = int(np.argmax(score))  # the first of equals: pool order breaks ties
        every, climb_every, position = weights.explore_every, weights.climb_every, len(chosen) + 1
        climbers = open_ & (climb > 0)
        if climb_every and position % climb_every == climb_every // 2 and climbers.any():
            # A climbing pick: a child of the fittest parent that must beat it in its own
            # cell; among its children, the one the model thinks likeliest to. It comes
            # before an exploring pick due at the same position (climb_every 8 would
            # otherwise never climb: its slot, the fourth, is an exploring one).
            best = float(np.max(np.where(climbers, climb, -np.inf)))
            hope = np.round(mean + sd, _DECIMALS)
            pick = int(np.argmax(np.where(climbers & (climb == best), hope, -np.inf)))
        elif every and position % every == 0:
            # An exploring pick: where the model is least sure of what a question is
            # about (the believer update below then keeps the next exploring pick away
            # from this one); operators' uncertainty is for expected improvement.
            # Words no queried question used come first (``new_words``), since the
            # model's uncertainty cannot see a new subject in a familiar shape.
            newest = open_ & (unseen == int(np.max(np.where(open_, unseen, -1))))
            pick = int(np.argmax(np.round(np.where(newest, model_sd, -np.inf), _DECIMALS)))
        chosen.append(pick)
        picked_acquisition.append(float(score[pick]))
        open_[pick] = False
        # Believe the pick will score its mean: its cell's bar (and, with local
        # competition, its question family's) rises to it, and what it will tell about
        # its neighbours is no longer uncertain.
        cell = cells[pick]
        filled[cell] = max(filled.get(cell, 0.0), float(mean[pick]))
        if weights.local_radius > 0:
            family = rows @ rows[pick] >= weights.local_radius
            local = np.where(family, np.maximum(local, float(mean[pick])), local)
        column = cov[:, pick].copy()
        cov = cov - np.outer(column, column) / (column[pick] + noise)
    return Selection(chosen, predicted, initial_sd.tolist(), picked_acquisition)


@dataclass(frozen=True)
class RankCorrelation:
    """Spearman's rank correlation between predicted and measured fitness.

    Attributes:
        n: Pairs it was computed over.
        rho: Spearman's rho, or None when undefined (fewer than 3 pairs, or one side
            constant, as when every probe scored 0).
        p_value: Its two-sided p-value, or None with ``rho``.
    """

    n: int
    rho: float | None
    p_value: float | None


def rank_correlation(predicted: Sequence[float], measured: Sequence[float]) -> RankCorrelation:
    """Spearman's rho of ``predicted`` against ``measured`` (scipy.stats.spearmanr)."""
    n = len(predicted)
    if n != len(measured):
        raise ValueError(f"{n} predictions for {len(measured)} measurements")
    if n < 3 or len(set(predicted)) < 2 or len(set(measured)) < 2:
        return RankCorrelation(n, None, None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = stats.spearmanr(predicted, measured)
    rho, p_value = float(result.statistic), float(result.pvalue)
    if not math.isfinite(rho):
        return RankCorrelation(n, None, None)
    return RankCorrelation(n, rho, p_value)
