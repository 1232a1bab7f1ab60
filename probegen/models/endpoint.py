"""Where an API backend sends its calls and with which key, and which server errors are
refusals rather than faults: shared by ``openai:`` and ``anthropic:``, which follow the
same rules."""

from __future__ import annotations

import os
from dataclasses import dataclass

from probegen.errors import ModelUnavailableError
from probegen.redaction import redact_url

__all__ = ["Endpoint", "is_unsupported_request", "resolve_endpoint"]

# Local servers (llama.cpp, vLLM, Ollama) ignore the key, but the SDKs insist on one.
PLACEHOLDER_KEY = "not-needed"


@dataclass(frozen=True)
class Endpoint:
    """A resolved endpoint.

    Attributes:
        url: The base URL the SDK is given.
        key: The API key (a placeholder for servers that need none). Never log it.
        official: Whether ``url`` is the provider's own API (some parameters differ).
    """

    url: str
    key: str
    official: bool

    def identity(self, spec: str) -> str:
        """``SPEC@URL`` without credentials: the same model name on two servers differs."""
        return f"{spec}@{redact_url(self.url)}"


def resolve_endpoint(
    spec: str,
    *,
    base_url: str | None,
    api_key: str | None,
    default_url: str,
    url_env: str,
    key_env: str,
    server_kind: str,
) -> Endpoint:
    """The endpoint from the flag, else ``url_env``, else the provider's default.

    A key is required only for the provider's own API; a custom server gets a
    placeholder.

    Raises:
        ModelUnavailableError: The provider's API is targeted and ``key_env`` is unset.
    """
    url = base_url or os.environ.get(url_env) or default_url
    official = redact_url(url) == default_url
    key = api_key or os.environ.get(key_env)
    if not key:
        if official:
            raise ModelUnavailableError(
                f"{spec}: {key_env} is not set",
                fix=f"export {key_env}=<your key>, or pass --base-url (or set {url_env}) "
                f"for {server_kind}",
            )
        key = PLACEHOLDER_KEY
    return Endpoint(url, key, official)


def is_unsupported_request(status: int, message: str) -> bool:
    """Whether a 5xx answer is the server refusing what was asked, not a passing fault.

    Some compatible servers report a request they cannot serve as a 500: llama-server
    answers an image sent to a text-only model with "image input is not supported". Such
    an answer repeats on every retry, so it must fail the call at once (and be recorded)
    instead of being retried with backoff.
    """
    return status >= 500 and "not supported" in message.lower()
