"""Models probegen talks to: one protocol, several backends, one managed wrapper.

Build a backend from a spec with :func:`resolve_model` (``local``, ``openai:gpt-4o-mini``,
``anthropic:claude-sonnet-4-5``, ``hf:REPO``, ``local-doc``, or a preset name), then wrap it in
:class:`Model` for retries, caching and bounded concurrency::

    model = Model(resolve_model("smollm2"))
    response = await model.generate([ChatMessage(role="user", content="Hi")], GenerateConfig())
"""

from probegen.models.base import (
    ChatMessage,
    ChatModel,
    GenerateConfig,
    ImageInput,
    Response,
    ResponseCache,
    RetryHint,
    Usage,
    accepts_images,
    cache_key,
)
from probegen.models.managed import EventHandler, Model, RetryPolicy
from probegen.models.pricing import Price, cost_usd
from probegen.models.registry import (
    BackendInfo,
    BackendOptions,
    ModelSpec,
    Preset,
    list_backends,
    list_presets,
    parse_spec,
    register_backend,
    resolve_model,
)
from probegen.models.replicas import ReplicaBackoff, ReplicaSet, ReplicaStats

__all__ = [
    "BackendInfo",
    "BackendOptions",
    "ChatMessage",
    "ChatModel",
    "EventHandler",
    "GenerateConfig",
    "ImageInput",
    "Model",
    "ModelSpec",
    "Preset",
    "Price",
    "ReplicaBackoff",
    "ReplicaSet",
    "ReplicaStats",
    "Response",
    "ResponseCache",
    "RetryHint",
    "RetryPolicy",
    "Usage",
    "accepts_images",
    "cache_key",
    "cost_usd",
    "list_backends",
    "list_presets",
    "parse_spec",
    "register_backend",
    "resolve_model",
]
