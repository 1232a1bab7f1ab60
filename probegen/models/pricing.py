"""Token prices, loaded from ``probegen/models/pricing.toml``.

A model that is not priced there costs ``None`` (unknown), never a guessed zero: a run
report that sums costs must be able to say "at least" rather than quietly undercount.
"""

from __future__ import annotations

import tomllib
from functools import cache
from importlib import resources

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from probegen.models.base import Usage

__all__ = ["Price", "batch_cost_usd", "batch_price_factor", "cost_usd", "load_prices"]

_PRICING_FILE = "pricing.toml"


class Price(BaseModel):
    """List price of one model, in USD per one million tokens."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    input: float = Field(ge=0)
    """USD per 1M input (prompt) tokens."""
    output: float = Field(ge=0)
    """USD per 1M output (completion) tokens."""


class _PricingFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prices: dict[str, Price]
    batch_price: dict[str, float] = Field(default_factory=dict)
    """Provider (spec prefix) -> share of the list price its batch API bills."""


@cache
def _pricing_file() -> _PricingFile:
    text = resources.files("probegen.models").joinpath(_PRICING_FILE).read_text("utf-8")
    try:
        return _PricingFile.model_validate(tomllib.loads(text))
    except (tomllib.TOMLDecodeError, ValidationError) as error:
        raise RuntimeError(f"probegen/models/{_PRICING_FILE} is malformed: {error}") from error


def load_prices() -> dict[str, Price]:
    """The price table shipped with probegen, keyed by model spec (``openai:gpt-4o-mini``).

    Raises:
        RuntimeError: The packaged file is malformed (a packaging bug, not a user error).
    """
    return _pricing_file().prices


def batch_price_factor(spec: str) -> float | None:
    """The share of the list price a batch answer of ``spec`` costs (0.5 for OpenAI and
    Anthropic), or None when its provider has no batch price."""
    return _pricing_file().batch_price.get(spec.partition(":")[0])


def batch_cost_usd(spec: str, usage: Usage) -> float | None:
    """The cost of one answer through the provider's batch API, or None when unknown."""
    listed, factor = cost_usd(spec, usage), batch_price_factor(spec)
    return None if listed is None or factor is None else listed * factor


def cost_usd(spec: str, usage: Usage) -> float | None:
    """The cost of one call, or None when the model is unpriced or usage is unreported.

    Args:
        spec: The backend's canonical spec, e.g. ``anthropic:claude-sonnet-4-5``.
        usage: Token counts the provider reported.
    """
    price = load_prices().get(spec)
    if price is None or usage.input_tokens is None or usage.output_tokens is None:
        return None
    return (usage.input_tokens * price.input + usage.output_tokens * price.output) / 1_000_000
