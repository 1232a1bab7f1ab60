"""Keep secrets out of everything probegen writes.

Run configs, events, query errors, run output files and error lines pass through this
module before they are stored or printed. Two layers mask a secret, each replacing it by
``[redacted]``:

- By value: every secret probegen is given is registered here when an endpoint is
  resolved (:func:`register_secret`, :func:`register_url_secrets`): API keys from flags
  or the environment, the user name and password of a URL's ``user:password@``, the
  values of a base URL's query string, and the forms a server may echo back (the base64
  of ``user:password`` that Basic auth sends, URL-encoded and JSON-escaped forms). A
  server that quotes the ``Authorization`` header or the password in an error body is
  masked whatever the secret looks like.
- By pattern: provider-key shapes (``sk-...``, ``hf_...``, ``Bearer ...``), the values of
  secret-looking environment variables (``*_API_KEY``, ``*_TOKEN``, ... of 8 characters or
  more), a URL's ``user:password@``, query-string values and fragment, and in a mapping
  the whole value of a secret-looking key (``api_key``, ``password``, ...).

Short secrets: a registered value of 8 characters or more is masked wherever it occurs; a
shorter one (a 3-character password is still a password) only where it stands alone,
not inside a longer word or number: ``abc`` is masked in ``user:abc@`` or ``password abc
rejected`` but ``abcdef`` is left alone. Values of fewer than 3 characters are never
registered: masking every standalone ``2`` or ``ab`` in every log would be absurd, and a
secret that short protects nothing (a URL's parts are still masked by their place).

Two strengths, because some text is replayed: :func:`redact_text` and :func:`redact`
mask everything above, for what came from outside or is only read (error messages,
events, log lines). :func:`redact_config` is for what probegen keeps as data and may
replay (a run's configuration, which a resume rebuilds the run from; scores; eval
results): a short registered value there is more likely an ordinary word (a user name
``bob``, a password ``test``) in a template or system prompt than a secret, and masking
it would change what a resume sends, so only secrets of 8 characters or more are masked
by value there, and query strings only in values that are a URL, not in prose. Secrets
in a URL-valued field are masked by their place in the URL either way.
"""

from __future__ import annotations

import base64
import json
import os
import re
import threading
from functools import lru_cache
from typing import Any
from urllib.parse import quote, quote_plus, unquote, unquote_plus, urlsplit, urlunsplit

__all__ = [
    "REDACTED",
    "mask_url",
    "redact",
    "redact_config",
    "redact_text",
    "redact_url",
    "register_secret",
    "register_url_secrets",
]

REDACTED = "[redacted]"

# Values this long are masked anywhere; shorter ones only as a whole token (see above).
_ANYWHERE_CHARS = 8
# Shorter values are not registered at all (see above).
_MIN_SECRET_CHARS = 3

# Whole-name matches only: "max_tokens" and "input_tokens" are settings, not secrets.
_SECRET_KEY = re.compile(
    r"(api[_-]?key|(^|[_-])(token|secret|password|passwd|authorization|credentials?))$", re.I
)
# Shapes of provider keys: OpenAI/Anthropic "sk-...", HF "hf_...", bearer tokens.
_SECRET_VALUE = re.compile(r"\b(sk-[A-Za-z0-9_\-]{8,}|hf_[A-Za-z0-9]{8,}|Bearer\s+\S+)")
_SECRET_ENV_SUFFIXES = ("_API_KEY", "_AUTH_TOKEN", "_TOKEN", "_SECRET", "_KEY")

# scheme://  netloc  path  ?query  #fragment, wherever a URL appears in a text.
_URL = re.compile(
    r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.\-]*://)(?P<netloc>[^\s/?#\"'<>]*)"
    r"(?P<path>[^\s?#\"'<>]*)(?P<query>\?[^\s#\"'<>]*)?(?P<fragment>#[^\s\"'<>]*)?"
)

_registered: set[str] = set()
_lock = threading.Lock()


def _forms(value: str) -> set[str]:
    """``value`` and the encodings of it a server may echo back."""
    forms = {value, unquote(value), unquote_plus(value)}
    for form in list(forms):
        forms |= {quote(form, safe=""), quote_plus(form), json.dumps(form)[1:-1]}
    return {form for form in forms if len(form.strip()) >= _MIN_SECRET_CHARS}


def register_secret(value: str | None) -> None:
    """Remember ``value`` as a secret, so :func:`redact_text` masks it wherever it appears.

    Its URL-encoded and JSON-escaped forms are registered with it. Blank values and values
    of fewer than 3 characters are ignored (masking them would mask everything).
    """
    if value is None or len(value.strip()) < _MIN_SECRET_CHARS:
        return
    with _lock:
        _registered.update(_forms(value))


def register_url_secrets(url: str) -> None:
    """Register the secrets a URL carries: its user name and password, ``user:password``
    and its base64 (what Basic auth sends), and every query-string value."""
    netloc, _, query = _split(url)
    userinfo = netloc.rpartition("@")[0] if "@" in netloc else ""
    if userinfo:
        user, _, password = userinfo.partition(":")
        for raw in {userinfo, unquote(userinfo)}:
            register_secret(raw)
            register_secret(base64.b64encode(raw.encode()).decode())
        register_secret(user)
        register_secret(password)
    for pair in query.split("&"):
        name, equals, value = pair.partition("=")
        register_secret(value if equals else name)


def _split(url: str) -> tuple[str, str, str]:
    """``(netloc, path, query)`` of a URL without validating it (never raises)."""
    match = _URL.match(url.strip())
    if match is None:
        return "", "", ""
    return match["netloc"], match["path"], (match["query"] or "")[1:]


def _secret_values(*, short: bool) -> frozenset[str]:
    env = {
        value
        for name, value in os.environ.items()
        if len(value) >= _ANYWHERE_CHARS and name.upper().endswith(_SECRET_ENV_SUFFIXES)
    }
    with _lock:
        given = set(_registered)
    if not short:
        given = {value for value in given if len(value) >= _ANYWHERE_CHARS}
    return frozenset(given | env)


@lru_cache(maxsize=8)
def _value_pattern(values: frozenset[str]) -> re.Pattern[str] | None:
    # One alternation, longest first, so "user:pw" is masked whole before "pw" is.
    parts = []
    for value in sorted(values, key=lambda v: (-len(v), v)):
        escaped = re.escape(value)
        if len(value) < _ANYWHERE_CHARS:
            escaped = rf"(?<![A-Za-z0-9]){escaped}(?![A-Za-z0-9])"
        parts.append(escaped)
    return re.compile("|".join(parts)) if parts else None


def _mask_url_match(match: re.Match[str], *, query: bool = True) -> str:
    netloc = match["netloc"]
    if "@" in netloc:
        netloc = f"{REDACTED}@{netloc.rpartition('@')[2]}"
    masked = f"{match['scheme']}{netloc}{match['path']}"
    if not query:
        return masked + (match["query"] or "") + (match["fragment"] or "")
    if match["query"] and match["query"] != "?":
        pairs = [
            f"{name}={REDACTED}" if equals else REDACTED
            for name, equals, _ in (pair.partition("=") for pair in match["query"][1:].split("&"))
        ]
        masked += "?" + "&".join(pairs)
    return masked + (f"#{REDACTED}" if match["fragment"] else "")


def mask_url(url: str) -> str:
    """``url`` (or every URL in a text) with its ``user:password@``, query-string values
    and fragment masked, the rest kept: a reader still sees which server."""
    return _URL.sub(_mask_url_match, url)


def _mask(text: str, *, short: bool) -> str:
    pattern = _value_pattern(_secret_values(short=short))
    if pattern is not None:
        text = pattern.sub(REDACTED, text)
    text = _SECRET_VALUE.sub(REDACTED, text)
    if "://" not in text:
        return text
    if short or _URL.fullmatch(text.strip()):
        return mask_url(text)
    return _URL.sub(lambda match: _mask_url_match(match, query=False), text)


def redact_text(text: str) -> str:
    """Mask secrets in ``text``: every registered secret (longest first), the values of
    secret-looking environment variables, key-shaped substrings, and the credentials and
    query-string values of URLs, so provider error messages can be logged and stored."""
    return _mask(text, short=True)


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


def redact(value: Any) -> Any:
    """Return a copy of ``value`` (JSON-like: events, logs) with secrets masked.

    Mapping entries whose key looks like a secret (``api_key``, ``token``, ...) are
    masked whole; strings go through :func:`redact_text`.
    """
    return _redact(value, short=True)


def redact_config(value: Any) -> Any:
    """Like :func:`redact`, for data probegen keeps and may replay (a run's
    configuration, scores, results): registered secrets shorter than 8 characters are
    not masked by value, and query strings only in values that are a URL (see the
    module docstring for why)."""
    return _redact(value, short=False)


def _redact(value: Any, *, short: bool) -> Any:
    if isinstance(value, dict):
        return {
            k: (REDACTED if _SECRET_KEY.search(str(k)) and v else _redact(v, short=short))
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [_redact(v, short=short) for v in value]
    if isinstance(value, str):
        return _mask(value, short=short)
    return value
