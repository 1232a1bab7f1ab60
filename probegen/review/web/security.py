"""The review app's defences, kept apart from its pages so they can be read in one go.

- **Bind address.** 127.0.0.1 by default; anything else needs ``allow_remote``
  (:func:`check_bind`) and prints a warning, because the app hands out the power to put
  probes into a release.
- **Host header.** Requests must name a host the server answers for
  (:func:`allowed_hosts`: the loopback names for a loopback bind, else the bound
  address, plus every public host name given); anything else gets 400, which shuts out
  DNS rebinding (a foreign page whose name resolves to this server).
- **Login.** A reviewer's token (see :mod:`probegen.review.reviewers`) opens a
  server-side session (:mod:`probegen.review.sessions`) whose random id is all the
  signed cookie (``SameSite=Strict``, ``HttpOnly``, and ``Secure`` with the settings'
  ``secure_cookies``) carries; every request checks it, so logout, removing the
  reviewer, or expiry ends it even for a copied cookie. The signing key is random per
  server start unless ``PROBEGEN_REVIEW_SECRET`` is set, so a restart logs everyone out
  but loses no decision: decisions live in the run store.
- **Scope.** A decision is accepted only on an item this server's queue offers (its runs,
  its threshold: :mod:`probegen.review.scope`); anything else is 404 (not served) or 403
  (below the threshold), for every action.
- **CSRF.** Every state-changing request is a POST whose form carries the session's
  CSRF token; :func:`checked_form` refuses anything else with 403. The app's routes
  are built so that no POST handler can skip it (see ``tests/test_review_web.py``).
- **Inert text.** Templates and answers are model- or user-written; Jinja's autoescape
  renders them as text and the CSP forbids inline script, so even an escaping slip
  would not run.
- **Media.** Image paths come from probe records; :func:`media_file` resolves them
  inside the run directory and answers None (404) for anything that escapes it.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
import re
import secrets
from collections.abc import Sequence
from pathlib import Path

from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from probegen.errors import ConfigError

__all__ = [
    "CSRF_FIELD",
    "LOOPBACK_HOSTS",
    "SECURITY_HEADERS",
    "SecurityHeaders",
    "allowed_hosts",
    "check_bind",
    "checked_form",
    "csrf_token",
    "media_file",
    "session_secret",
]

CSRF_FIELD = "csrf_token"

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)

SECURITY_HEADERS = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
}
"""Headers on every response. ``no-store``: pages show unreleased, possibly harmful text."""

MEDIA_SUFFIXES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg",
                  ".webp": "image/webp", ".gif": "image/gif"}  # fmt: skip


LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")
"""Host header names a loopback-bound server answers to."""

_HOST_NAME = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)(\.(?!-)[a-z0-9-]{1,63}(?<!-))*")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _host_header_form(host: str) -> str | None:
    """``host`` as a Host header carries it (IPv6 in brackets, lower case), or None if it
    is neither an IP address nor a DNS name."""
    literal = host.strip().removeprefix("[").removesuffix("]")
    try:
        ip = ipaddress.ip_address(literal)
    except ValueError:
        name = host.strip().lower().rstrip(".")
        return name if _HOST_NAME.fullmatch(name) else None
    return f"[{ip.compressed}]" if ip.version == 6 else ip.compressed


def allowed_hosts(bind_host: str, public_hosts: Sequence[str]) -> tuple[str, ...]:
    """The Host header values the app accepts (compared without the port).

    Args:
        bind_host: The address bound. A loopback one admits ``127.0.0.1``,
            ``localhost`` and ``[::1]``; another admits itself, unless it is a wildcard
            (``0.0.0.0``, ``::``), which no client names.
        public_hosts: The names clients (or a proxy passing the Host header through)
            put in the URL.

    Raises:
        ConfigError: If a public host is not a bare name or address (``public_hosts``),
            or nothing would be accepted (``bind_host`` a wildcard, no public host).
    """
    hosts: list[str] = []
    for name in public_hosts:
        form = _host_header_form(name)
        if form is None:
            raise ConfigError(
                "public_hosts",
                "not a host name or IP address",
                value=repr(name),
                fix="give the bare name clients use, without scheme, port or path, "
                "e.g. review.example.org",
            )
        hosts.append(form)
    bound = _host_header_form(bind_host)
    if _is_loopback(bind_host):
        hosts += [*LOOPBACK_HOSTS, *([bound] if bound else [])]
    elif bound is not None and bound not in ("0.0.0.0", "[::]"):
        hosts.append(bound)
    if not hosts:
        raise ConfigError(
            "bind_host",
            "a wildcard bind has no name to check the Host header against",
            value=bind_host,
            fix="pass `public_hosts` with each name or address clients use",
        )
    return tuple(dict.fromkeys(hosts))


def check_bind(host: str, allow_remote: bool) -> str | None:
    """Refuse a non-loopback bind unless allowed; return the warning to print, if any.

    Raises:
        ConfigError: If ``host`` is not loopback and ``allow_remote`` is false.
    """
    if _is_loopback(host):
        return None
    if not allow_remote:
        raise ConfigError(
            "host",
            "the review app binds to 127.0.0.1 unless told otherwise",
            value=host,
            fix="pass `allow_remote` to serve other machines (anyone with a token can review)",
        )
    return (
        f"warning: serving the review queue on {host}: any machine that can reach it may try "
        "to log in; tokens travel in clear text without a TLS proxy in front"
    )


def session_secret() -> str:
    """The session-signing key: ``$PROBEGEN_REVIEW_SECRET`` or random per start."""
    return os.environ.get("PROBEGEN_REVIEW_SECRET") or secrets.token_hex(32)


def csrf_token(request: Request) -> str:
    """The session's CSRF token, made on first use (forms embed it)."""
    token = request.session.get(CSRF_FIELD)
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        request.session[CSRF_FIELD] = token
    return token


async def checked_form(request: Request) -> FormData:
    """The request's form, after checking its CSRF token against the session's.

    Raises:
        HTTPException: 403 when the token is missing or wrong.
    """
    form = await request.form()
    sent = form.get(CSRF_FIELD)
    expected = request.session.get(CSRF_FIELD)
    if (
        not isinstance(sent, str)
        or not isinstance(expected, str)
        or not hmac.compare_digest(sent, expected)
    ):
        raise HTTPException(403, "missing or invalid CSRF token: reload the page and retry")
    return form


def media_file(run_dir: Path, relative: str) -> tuple[Path, str] | None:
    """The file ``relative`` names inside ``run_dir`` and its media type, or None.

    None for an absolute path, a path that resolves (through ``..`` or a symlink)
    outside ``run_dir``, a missing file, or a type that is not an image.
    """
    base = run_dir.resolve()
    if not relative or Path(relative).is_absolute() or "\x00" in relative:
        return None
    target = (base / relative).resolve()
    if not target.is_relative_to(base) or not target.is_file():
        return None
    media_type = MEDIA_SUFFIXES.get(target.suffix.lower())
    return None if media_type is None else (target, media_type)


class SecurityHeaders:
    """ASGI middleware adding :data:`SECURITY_HEADERS` to every HTTP response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    (k, v)
                    for k, v in message.get("headers", [])
                    if k.decode().lower() not in SECURITY_HEADERS
                ]
                headers += [(k.encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)
