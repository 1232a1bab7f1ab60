"""Keep secrets out of everything probegen writes.

Run configs, events and reports pass through :func:`redact` before they are stored, so
an API key that slips into a config (a header, a URL with credentials, a key pasted
into a flag) is replaced by ``[redacted]`` rather than written to disk.
"""

from __future__ import annotations

import os
import re
from typing import Any
from urllib.parse import urlsplit, urlunsplit

__all__ = ["REDACTED", "redact", "redact_text", "redact_url"]

REDACTED = "[redacted]"

# Whole-name matches only: "max_tokens" and "input_tokens" are settings, not secrets.
_SECRET_KEY = re.compile(
    r"(api[_-]?key|(^|[_-])(token|secret|password|passwd|authorization|credentials?))$", re.I
)
# Shapes of provider keys: OpenAI/Anthropic "sk-...", HF "hf_...", bearer tokens.
_SECRET_VALUE = re.compile(r"\b(sk-[A-Za-z0-9_\-]{8,}|hf_[A-Za-z0-9]{8,}|Bearer\s+\S+)")


_SECRET_ENV_SUFFIXES = ("_API_KEY", "_AUTH_TOKEN", "_TOKEN", "_SECRET", "_KEY")


def redact_text(text: str) -> str:
    """Mask secrets in ``text``: key-shaped substrings, URL credentials, and the values
    of secret-looking environment variables (``*_API_KEY``, ``*_TOKEN``, ...) whatever
    their shape, so provider error messages can be logged and stored safely."""
    for name, value in os.environ.items():
        if len(value) >= 8 and name.upper().endswith(_SECRET_ENV_SUFFIXES):
            text = text.replace(value, REDACTED)
    text = _SECRET_VALUE.sub(REDACTED, text)
    if "://" in text and "@" in text:
        text = re.sub(r"(\w+://)[^/@\s]+@", rf"\1{REDACTED}@", text)
    return text


def redact_url(url: str) -> str:
    """``url`` without credentials, query string or trailing slash, for identities and logs.

    A base URL may carry ``user:password@`` or ``?api-key=...`` (Azure-style gateways);
    neither may reach a cache key, log line or error message.
    """
    parts = urlsplit(url.strip())
    host = parts.hostname or ""
    if ":" in host:  # IPv6 literals keep their brackets
        host = f"[{host}]"
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path.rstrip("/"), "", ""))


def _mask_url_credentials(value: str) -> str:
    parts = urlsplit(value)
    if parts.username or parts.password:
        host = parts.hostname or ""
        netloc = f"{REDACTED}@{host}" + (f":{parts.port}" if parts.port else "")
        return urlunsplit(parts._replace(netloc=netloc))
    return value


def redact(value: Any) -> Any:
    """Return a copy of ``value`` (JSON-like) with secrets masked.

    Mapping entries whose key looks like a secret (``api_key``, ``token``, ...) are
    masked whole; strings are scanned for key shapes and URL credentials.
    """
    if isinstance(value, dict):
        return {
            k: (REDACTED if _SECRET_KEY.search(str(k)) and v else redact(v))
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    if isinstance(value, str):
        return redact_text(_mask_url_credentials(value) if "://" in value else value)
    return value
