"""Adaptive selection: a discounted UCB1 bandit over mutation operators or emitters.

Which operator pays off changes during a search (paraphrasing helps early, intersectional
swaps once the easy biases are found), so the bandit forgets: every update discounts all
arms' reward sums and pull counts by ``decay`` (D-UCB, Garivier & Moulines 2011). An arm
left alone sees its discounted count shrink and its exploration bonus grow, so it is
retried, and a formerly best arm that stops paying is abandoned within about
``1 / (1 - decay)`` updates.

The search asks for a whole generation before any child is scored, so each
:meth:`OperatorBandit.choose` counts a pending pull with reward 0 for the arm it returns
(a "virtual loss"): within a batch an arm's score drops each time it is chosen and the
batch spreads over the good arms instead of going all to the one that happens to lead.
Every choice should be matched by one :meth:`OperatorBandit.update` (reward 0 for a
child that failed or was a duplicate), or by one :meth:`OperatorBandit.release` when the
pull turned out not to count (its children were proposed but never queried, so there is
nothing to judge it by); an unmatched choice leaves a pending pull that keeps weighing on
that arm.

The arms are names, whatever they stand for: the search runs one bandit over its
emitters (:mod:`probegen.search.emitters`) and one per emitter over its operators.

Rewards are the caller's, e.g. ``max(0, child - best parent fitness)`` plus a bonus for a
new cell. The exploration bonus is scaled by the largest reward seen, so ``exploration``
does not depend on the reward's units.
"""

from __future__ import annotations

import math
import random
from collections.abc import Collection, Mapping, Sequence
from typing import Any

__all__ = ["OperatorBandit"]

_FORMAT = 1


class OperatorBandit:
    """Discounted UCB1 over operator names.

    Args:
        names: The operators (arms); at least one, no repeats.
        rng: Breaks ties and orders the first pulls; seed it for reproducible runs.
        exploration: Weight of the UCB bonus (0 is greedy on the discounted mean).
        decay: Discount per update in (0, 1]; 1 never forgets (plain UCB1).

    Raises:
        ValueError: On no or repeated names, a negative ``exploration`` or a ``decay``
            outside (0, 1].
    """

    def __init__(
        self,
        names: Sequence[str],
        *,
        rng: random.Random,
        exploration: float = 0.5,
        decay: float = 0.98,
    ) -> None:
        names = list(names)
        if not names:
            raise ValueError("the operator bandit needs at least one operator name")
        if len(set(names)) != len(names):
            raise ValueError(f"operator names repeat: {names}")
        if exploration < 0:
            raise ValueError(f"exploration must be >= 0, got {exploration}")
        if not 0.0 < decay <= 1.0:
            raise ValueError(f"decay must be in (0, 1] (e.g. 0.98), got {decay}")
        self.names = names
        self.rng = rng
        self.exploration = float(exploration)
        self.decay = float(decay)
        self._weight = dict.fromkeys(names, 0.0)  # discounted pull counts
        self._reward = dict.fromkeys(names, 0.0)  # discounted reward sums
        self._pending = dict.fromkeys(names, 0)
        self._pulls = dict.fromkeys(names, 0)
        self._total = dict.fromkeys(names, 0.0)
        self._successes = dict.fromkeys(names, 0)
        self._scale = 0.0  # largest |reward| seen

    def __repr__(self) -> str:
        return f"OperatorBandit({self.names}, exploration={self.exploration}, decay={self.decay})"

    def _check(self, name: str) -> None:
        if name not in self._weight:
            raise ValueError(f"unknown operator {name!r}: the bandit has {self.names}")

    def _pick(self, candidates: list[str]) -> str:
        return candidates[0] if len(candidates) == 1 else self.rng.choice(candidates)

    def scores(self) -> dict[str, float]:
        """Each arm's UCB score now: discounted mean plus exploration bonus.

        Pending pulls count as pulls with reward 0 (a "virtual loss"), so within a batch
        each choice of an arm lowers its mean and bonus and near-equal arms share the
        batch. An arm with no reward yet starts from the largest reward seen (optimism).
        """
        scale = self._scale or 1.0
        effective = {n: self._weight[n] + self._pending[n] for n in self.names}
        log_total = math.log(max(sum(effective.values()), math.e))
        scores: dict[str, float] = {}
        for name in self.names:
            count = max(effective[name], 1e-12)
            if self._weight[name] > 0:
                mean = self._reward[name] / count
            else:
                mean = scale / (1.0 + self._pending[name])
            scores[name] = mean + self.exploration * scale * math.sqrt(2.0 * log_total / count)
        return scores

    def choose(self, exclude: Collection[str] = ()) -> str:
        """The operator to use next; counts as pending until :meth:`update`.

        Args:
            exclude: Arms not to choose this time (e.g. an emitter that has spent its
                calls for the generation).

        Raises:
            ValueError: If every arm is excluded.
        """
        allowed = [n for n in self.names if n not in exclude]
        if not allowed:
            raise ValueError(f"every arm is excluded: {self.names}")
        idle = [n for n in allowed if self._pulls[n] == 0 and self._pending[n] == 0]
        if idle:
            # Try every operator once before judging any (the first batch covers them all).
            name = self._pick(idle)
        else:
            scores = self.scores()
            top = max(scores[n] for n in allowed)
            name = self._pick([n for n in allowed if scores[n] >= top - 1e-12])
        self._pending[name] += 1
        return name

    def choose_many(self, n: int) -> list[str]:
        """``n`` :meth:`choose` calls: operators for a whole generation."""
        return [self.choose() for _ in range(n)]

    def release(self, name: str) -> None:
        """Clear one pending pull of ``name`` without counting it (nothing decays).

        Raises:
            ValueError: On an unknown name.
        """
        self._check(name)
        self._pending[name] = max(0, self._pending[name] - 1)

    def update(self, name: str, reward: float) -> None:
        """Record the reward of one pull of ``name`` (clears one pending pull).

        Raises:
            ValueError: On an unknown name or a non-finite reward.
        """
        self._check(name)
        if not math.isfinite(reward):
            raise ValueError(f"reward for {name!r} is not finite: {reward!r}")
        for arm in self.names:
            self._weight[arm] *= self.decay
            self._reward[arm] *= self.decay
        self._weight[name] += 1.0
        self._reward[name] += reward
        self._pending[name] = max(0, self._pending[name] - 1)
        self._pulls[name] += 1
        self._total[name] += reward
        self._successes[name] += reward > 0
        self._scale = max(self._scale, abs(reward))

    def stats(self) -> dict[str, dict[str, float]]:
        """Per operator: ``pulls``, ``mean_reward`` (lifetime), ``successes`` (reward > 0)
        and ``discounted_mean`` (what the bandit currently believes)."""
        return {
            name: {
                "pulls": self._pulls[name],
                "mean_reward": self._total[name] / self._pulls[name] if self._pulls[name] else 0.0,
                "successes": self._successes[name],
                "discounted_mean": (
                    self._reward[name] / self._weight[name] if self._weight[name] > 0 else 0.0
                ),
            }
            for name in self.names
        }

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready state for resuming. Pending pulls are left out: a resumed run
        re-asks for the children that were in flight. The rng is the caller's to save."""
        return {
            "format": _FORMAT,
            "names": list(self.names),
            "exploration": self.exploration,
            "decay": self.decay,
            "scale": self._scale,
            "arms": {
                name: {
                    "weight": self._weight[name],
                    "reward": self._reward[name],
                    "pulls": self._pulls[name],
                    "total": self._total[name],
                    "successes": self._successes[name],
                }
                for name in self.names
            },
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, rng: random.Random) -> OperatorBandit:
        """Rebuild a bandit saved by :meth:`to_dict`.

        Raises:
            ValueError: If ``data`` is not a saved bandit of a known format.
        """
        if data.get("format") != _FORMAT:
            raise ValueError(
                f"bandit state has format {data.get('format')!r}, expected {_FORMAT}: "
                "it was saved by a different probegen version"
            )
        try:
            bandit = cls(
                data["names"], rng=rng, exploration=data["exploration"], decay=data["decay"]
            )
            bandit._scale = float(data["scale"])
            for name in bandit.names:
                arm = data["arms"][name]
                bandit._weight[name] = float(arm["weight"])
                bandit._reward[name] = float(arm["reward"])
                bandit._pulls[name] = int(arm["pulls"])
                bandit._total[name] = float(arm["total"])
                bandit._successes[name] = int(arm["successes"])
        except (KeyError, TypeError) as error:
            raise ValueError(f"bandit state is incomplete: missing {error}") from error
        return bandit
