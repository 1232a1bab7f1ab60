"""What the library calls (``probegen.evolve``, ``evaluate``, ``ask``) share.

- :class:`OwnedModels`: the models a call builds from specs, which it closes, beside the
  objects and functions a caller passes, which stay the caller's.
- :func:`sampling`: a :class:`~probegen.models.base.GenerateConfig` from keyword
  arguments, refusing a bad one as a :class:`~probegen.errors.ConfigError`.
- :func:`in_own_thread_if_a_loop_runs`: a call made from a notebook (which runs an event
  loop) runs in a worker thread, since the call runs its own loop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Callable
from typing import TypeVar

from pydantic import ValidationError

from probegen.errors import ConfigError
from probegen.models.base import ChatModel, GenerateConfig
from probegen.models.function import PYTHON_PREFIX, ModelFunction, as_chat_model
from probegen.models.registry import BaseUrls, resolve_model

__all__ = ["ModelLike", "OwnedModels", "in_own_thread_if_a_loop_runs", "sampling"]

ModelLike = str | ChatModel | ModelFunction
"""A model argument: a spec string, a backend object, or ``async def f(messages, config)
-> str``."""

_T = TypeVar("_T")


class OwnedModels:
    """Builds a call's models, and closes the ones it built from specs.

    Args:
        timeout_s: Per-attempt timeout of the models built from specs.
    """

    def __init__(self, timeout_s: float | None = None) -> None:
        self.timeout_s = timeout_s
        self.owned: list[ChatModel] = []

    def get(
        self, value: object, field: str, *, base_url: BaseUrls = None, url_field: str = ""
    ) -> ChatModel:
        """The backend for a model argument; one built from a spec is closed by
        :meth:`aclose`.

        Args:
            value: A spec, a :class:`ChatModel` or an async function.
            field: The argument, for errors (``target``, ``judge``).
            base_url: The spec's endpoint, or its replicas' endpoints.
            url_field: The argument ``base_url`` was given as (default
                ``<field>_base_url``).

        Raises:
            ConfigError: ``value`` is not a model, a spec names a Python function, or
                ``base_url`` is given for an object.
            ModelSpecError: An unknown spec.
            ModelUnavailableError: The spec's SDK, key or weights are missing.
        """
        url_field = url_field or f"{field}_base_url"
        backend = as_chat_model(value, field)
        if backend is not None:
            if base_url:
                raise ConfigError(url_field, f"applies to a model spec, not to {backend.spec}")
            return backend
        spec = str(value)
        if spec.startswith(PYTHON_PREFIX):
            raise ConfigError(
                field,
                f"{spec} names a Python function, which is never imported from a name",
                fix="pass the function itself",
            )
        built = resolve_model(
            spec, base_url=base_url, timeout_s=self.timeout_s, url_field=url_field
        )
        self.owned.append(built)
        return built

    def is_owned(self, backend: ChatModel) -> bool:
        """Whether the call built ``backend`` (and so closes it)."""
        return any(backend is owned for owned in self.owned)

    async def aclose_one(self, backend: ChatModel) -> None:
        """Close ``backend`` now if the call built it (an in-process model frees its
        weights before the next is used); a model passed in stays open."""
        if self.is_owned(backend):
            self.owned = [owned for owned in self.owned if owned is not backend]
            await backend.aclose()

    async def aclose(self) -> None:
        """Close every model built here (once: each is forgotten as it is closed)."""
        while self.owned:
            await self.owned.pop(0).aclose()

    def close(self) -> None:
        """:meth:`aclose` from code that runs no event loop (a call that failed early)."""
        if self.owned:
            asyncio.run(self.aclose())


def sampling(temperature: float, max_tokens: int, seed: int | None) -> GenerateConfig:
    """The sampling settings of a call.

    Raises:
        ConfigError: A value out of range (names ``temperature`` or ``max_tokens``).
    """
    try:
        return GenerateConfig(temperature=temperature, max_tokens=max_tokens, seed=seed)
    except ValidationError as error:
        first = error.errors()[0]
        name = str(first["loc"][0]) if first["loc"] else "temperature"
        raise ConfigError(name, str(first["msg"]), value=first.get("input")) from None


def in_own_thread_if_a_loop_runs(work: Callable[[], _T]) -> _T:
    """Run ``work`` here, or in a worker thread when this thread runs an event loop
    (a notebook does): a library call runs its own loop, which cannot nest in another."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return work()
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="probegen") as pool:
        return pool.submit(work).result()
