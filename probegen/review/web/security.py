"""The review app's defences, kept apart from its pages so they can be read in one go.

- **Bind address.** 127.0.0.1 by default; anything else needs ``--allow-remote`` and
  prints a warning, because the app hands out the power to put probes into a release.
- **Login.** A reviewer's token (see :mod:`probegen.review.reviewers`) buys a signed
  session cookie (``SameSite=Strict``, ``HttpOnly``). The signing key is random per
  server start unless ``PROBEGEN_REVIEW_SECRET`` is set, so a restart logs everyone out
  but loses no decision: decisions live in the run store.
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
import secrets
from pathlib import Path

from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from probegen.errors import UsageError

__all__ = [
    "CSRF_FIELD",
    "SECURITY_HEADERS",
    "SecurityHeaders",
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


def check_bind(host: str, allow_remote: bool) -> str | None:
    """Refuse a non-loopback bind unless allowed; return the warning to print, if any.

    Raises:
        UsageError: If ``host`` is not loopback and ``allow_remote`` is false.
    """
    if host == "localhost":
        return None
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if loopback:
        return None
    if not allow_remote:
        raise UsageError(
            f"--host {host}: the review app binds to 127.0.0.1 unless told otherwise",
            fix="pass --allow-remote to serve other machines (anyone with a token can review)",
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
