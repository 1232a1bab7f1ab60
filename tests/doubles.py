"""Small test doubles shared by the test files (the real servers live in servers.py)."""

from __future__ import annotations

from collections.abc import Sequence

from probegen.models import ChatMessage, GenerateConfig, Response

__all__ = ["DictCache", "Sleeps"]


class Sleeps:
    """Records the waits a Model asks for instead of waiting them."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


class DictCache:
    """The smallest ResponseCache: a dict."""

    def __init__(self) -> None:
        self.entries: dict[str, Response] = {}

    def get_response(self, key: str) -> Response | None:
        return self.entries.get(key)

    def put_response(
        self,
        key: str,
        identity: str,
        messages: Sequence[ChatMessage],
        config: GenerateConfig,
        sample_index: int,
        response: Response,
    ) -> None:
        self.entries[key] = response
