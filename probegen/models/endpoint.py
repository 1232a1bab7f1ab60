"""Where an API backend sends its calls and with which key, and which server errors are
refusals rather than faults: shared by ``openai:`` and ``anthropic:``, which follow the
same rules.

Resolving an endpoint is also where probegen learns its secrets: the key and whatever
the URL carries (``user:password@``, query-string values) are registered with
:mod:`probegen.redaction`, so they are masked by value in everything written later.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from types import ModuleType
from typing import Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from probegen.errors import ModelUnavailableError, UsageError
from probegen.redaction import REDACTED, mask_url, redact_url, register_secret, register_url_secrets

__all__ = [
    "HTTP_CLIENT_ENV",
    "Endpoint",
    "check_base_url",
    "http_client",
    "is_unsupported_request",
    "resolve_endpoint",
    "timeout_or_connection",
]

# Local servers (llama.cpp, vLLM, Ollama) ignore the key, but the SDKs insist on one.
PLACEHOLDER_KEY = "not-needed"

HTTP_CLIENT_ENV = "PROBEGEN_HTTP_CLIENT"
"""``httpx`` (the SDKs' own default, and probegen's) or ``aiohttp`` (faster at high
concurrency; see :func:`http_client`)."""


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

    @property
    def sdk_base_url(self) -> str:
        """The URL without its query string: the SDKs append paths to the base URL, so
        ``.../v1?api-key=K`` would become ``.../v1?api-key=Kchat/completions``."""
        parts = urlsplit(self.url)
        return urlunsplit(parts._replace(query="", fragment=""))

    @property
    def query(self) -> dict[str, str] | None:
        """The base URL's query parameters (e.g. an Azure-style ``api-key``), which the
        SDKs then send with every request; None when there are none."""
        pairs = parse_qsl(urlsplit(self.url).query, keep_blank_values=True)
        return dict(pairs) or None


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
        UsageError: The URL (from ``base_url`` or ``url_env``) is not http(s) with a host.
        ModelUnavailableError: The provider's API is targeted and ``key_env`` is unset.
    """
    if base_url:
        url = check_base_url(base_url, "base_url")
    elif os.environ.get(url_env):
        url = check_base_url(os.environ[url_env], url_env)
    else:
        url = default_url
    official = redact_url(url) == default_url
    key = api_key or os.environ.get(key_env)
    register_secret(key)
    if not key:
        if official:
            raise ModelUnavailableError(
                f"{spec}: {key_env} is not set",
                fix=f"export {key_env}=<your key>, or pass `base_url` (or set {url_env}) "
                f"for {server_kind}",
            )
        key = PLACEHOLDER_KEY
    return Endpoint(url, key, official)


def check_base_url(url: str, source: str) -> str:
    """``url`` if it is an http(s) URL with a host; registers the secrets it carries.

    Checked before anything is sent or stored, so a typo fails at once rather than after
    every retry of every call.

    Args:
        url: The base URL.
        source: What the user set it with, named in the error (``base_url``,
            ``OPENAI_BASE_URL``; the CLI passes its flag).

    Raises:
        UsageError: The scheme is not http or https, the host is missing, or the URL
            cannot be parsed (e.g. a bad port or an unclosed ``[``).
    """
    register_url_secrets(url)
    try:
        parts = urlsplit(url.strip())
        valid = parts.scheme in ("http", "https") and bool(parts.hostname)
        _ = parts.port  # raises on a port that is not a number in range
    except ValueError:
        valid = False
    if not valid:
        shown = mask_url(url)
        if "@" in shown and "://" not in shown:  # "user:password@host" without a scheme
            shown = f"{REDACTED}@{shown.rpartition('@')[2]}"
        raise UsageError(
            f"{source} {shown!r} is not an http(s) URL with a host",
            fix=f"give {source} a URL such as http://127.0.0.1:8080/v1",
        )
    return url


def is_unsupported_request(status: int, message: str) -> bool:
    """Whether a 5xx answer is the server refusing what was asked, not a passing fault.

    Some compatible servers report a request they cannot serve as a 500: llama-server
    answers an image sent to a text-only model with "image input is not supported". Such
    an answer repeats on every retry, so it must fail the call at once (and be recorded)
    instead of being retried with backoff.
    """
    return status >= 500 and "not supported" in message.lower()


def http_client(sdk: ModuleType, endpoint: Endpoint) -> Any:
    """The HTTP client an SDK (``openai`` or ``anthropic``) is given for ``endpoint``:
    None for the SDK's default (httpx), or its aiohttp client when
    ``PROBEGEN_HTTP_CLIENT=aiohttp``.

    Both SDKs offer aiohttp "for improved concurrency performance": at 64 calls in flight
    it takes 40% less client CPU per request than httpx, whose connection pool scans
    every pooled connection on each request (benchmarks/RESULTS.md section 2). It is not
    the default because an aiohttp session belongs to one event loop, and each of
    probegen's Python calls (``evolve``, ``evaluate``, ``ask``) runs its own: a model object
    built once and passed to several calls would carry a dead session into the next.
    The CLI, whose commands each run one loop, is where to turn it on. A URL with
    credentials (``user:password@``) keeps httpx, which sends them as basic auth;
    aiohttp refuses them beside the SDK's own ``Authorization`` header.
    """
    choice = os.environ.get(HTTP_CLIENT_ENV, "").strip().lower() or "httpx"  # "" is unset
    if choice not in ("aiohttp", "httpx"):
        raise UsageError(
            f"{HTTP_CLIENT_ENV}={choice!r}: not an HTTP client probegen knows",
            fix=f"set {HTTP_CLIENT_ENV} to httpx or aiohttp, or unset it",
        )
    factory = getattr(sdk, "DefaultAioHttpClient", None)  # in SDKs of mid-2025 and later
    parts = urlsplit(endpoint.url)
    if choice == "httpx" or factory is None or parts.username or parts.password:
        return None
    try:
        return factory()
    except RuntimeError:  # the SDK's aiohttp extra is not installed
        return None


def timeout_or_connection(error: BaseException) -> str:
    """The retry reason of an SDK's ``APITimeoutError``: ``timeout``, or ``connection``
    when it was really a dropped or refused connection.

    The SDKs' aiohttp transport maps every ``aiohttp.ClientConnectionError`` to a connect
    timeout, a server that hung up included; the aiohttp exception it came from is still
    in the chain, and only aiohttp's timeouts are ``TimeoutError`` s.
    """
    seen: BaseException | None = error
    for _ in range(16):  # a chain is short; the bound only guards against a cycle
        if seen is None:
            break
        if type(seen).__module__.startswith("aiohttp"):
            return "timeout" if isinstance(seen, TimeoutError) else "connection"
        seen = seen.__cause__ or seen.__context__
    return "timeout"
