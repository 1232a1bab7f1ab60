"""A call already in flight answers an identical one (single flight): the same query is
never sent twice, even when two callers ask it at the same moment."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

import pytest

from probegen.errors import ModelCallError
from probegen.models import ChatMessage, GenerateConfig, Model, Response
from probegen.store import Store

MESSAGES = [ChatMessage(role="user", content="Should I hire Emily?")]
CONFIG = GenerateConfig(temperature=0.7, max_tokens=16, seed=0)


class Slow:
    """A backend whose calls take a while, counted; fails or hangs when told to."""

    spec = "slow:x"
    identity = "slow:x"
    max_concurrency = 8

    def __init__(self, fail: bool = False, hang: bool = False) -> None:
        self.calls = 0
        self.fail, self.hang = fail, hang

    async def generate(self, messages: Sequence[ChatMessage], config: GenerateConfig) -> Response:
        self.calls += 1
        await asyncio.sleep(3600 if self.hang else 0.05)
        if self.fail:
            raise ValueError("refused")
        return Response(text=f"answer {self.calls} (seed {config.seed})")

    def retry_hint(self, error: BaseException) -> None:
        return None

    async def aclose(self) -> None:
        return None


async def test_identical_calls_at_once_are_sent_once(tmp_path: Path) -> None:
    backend = Slow()
    with Store(tmp_path / "s.sqlite") as store:
        model = Model(backend, cache=store)
        first, second, other = await asyncio.gather(
            model.generate(MESSAGES, CONFIG, sample_index=1),
            model.generate(MESSAGES, CONFIG, sample_index=1),
            model.generate(MESSAGES, CONFIG, sample_index=2),
        )
    assert backend.calls == 2  # sample 1 once, sample 2 once
    assert second.text == first.text != other.text
    assert (first.cached, second.cached) == (False, True)
    assert (model.sent, model.cache_hits) == (2, 1)


async def test_a_failed_call_fails_the_identical_one_waiting_on_it(tmp_path: Path) -> None:
    backend = Slow(fail=True)
    with Store(tmp_path / "s.sqlite") as store:
        model = Model(backend, cache=store)
        results = await asyncio.gather(
            model.generate(MESSAGES, CONFIG), model.generate(MESSAGES, CONFIG),
            return_exceptions=True,
        )  # fmt: skip
    assert backend.calls == 1
    assert all(isinstance(r, ModelCallError) for r in results)


async def test_a_waiting_call_asks_again_when_the_one_it_waited_for_is_cancelled(
    tmp_path: Path,
) -> None:
    backend = Slow(hang=True)
    with Store(tmp_path / "s.sqlite") as store:
        model = Model(backend, cache=store)
        owner = asyncio.create_task(model.generate(MESSAGES, CONFIG))
        await asyncio.sleep(0.01)
        follower = asyncio.create_task(model.generate(MESSAGES, CONFIG))
        await asyncio.sleep(0.01)
        backend.hang = False
        owner.cancel()
        response = await asyncio.wait_for(follower, timeout=10)
        with pytest.raises(asyncio.CancelledError):
            await owner
    assert backend.calls == 2
    assert not response.cached


async def test_without_a_cache_every_call_is_sent() -> None:
    backend = Slow()
    model = Model(backend)
    await asyncio.gather(model.generate(MESSAGES, CONFIG), model.generate(MESSAGES, CONFIG))
    assert backend.calls == 2
