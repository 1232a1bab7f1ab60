"""Keep secrets out of everything probegen writes.

Run configs, events and reports pass through :func:`redact` before they are stored, so
an API key that slips into a config (a header, a URL with credentials, a key pasted
into a flag) is replaced by ``[redacted]`` rather than written to disk.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit, urlunsplit

__all__ = ["REDACTED", "redact", "redact_text"]

REDACTED = "[redacted]"

_SECRET_KEY = re.compile(r"(api[_-]?key|token|secret|password|authorization|credential)", re.I)
# Shapes of provider keys: OpenAI/Anthropic "sk-...", HF "hf_...", bearer tokens.
_SECRET_VALUE = re.compile(r"\b(sk-[A-Za-z0-9_\-]{8,}|hf_[A-Za-z0-9]{8,}|Bearer\s+\S+)")


def redact_text(text: str) -> str:
    """Mask key-shaped substrings and URL credentials in ``text``."""
    text = _SECRET_VALUE.sub(REDACTED, text)
    if "://" in text and "@" in text:
        text = re.sub(r"(\w+://)[^/@\s]+@", rf"\1{REDACTED}@", text)
    return text


def _redact_url(value: str) -> str:
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
        return redact_text(_redact_url(value) if "://" in value else value)
    return value
