"""The review web app: server-rendered pages over :mod:`probegen.review`.

Pages: the queue (``/``), an item (``/item/RUN/PROBE``) with its decision forms, the
adjudication view (``/adjudicate``), agreement (``/stats``) and login. Every decision
goes through :func:`probegen.review.record_decision`, the same call ``review cli`` makes,
in the scope of the server's queue (its runs and threshold), so the web app adds pages
and defences (:mod:`.security`), not rules. Sessions live in the run store
(:mod:`probegen.review.sessions`); the cookie only names one.

The store is opened in the app's lifespan, on the server's event-loop thread, and every
handler is ``async`` so the SQLite connection never crosses threads.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
from starlette.applications import Starlette
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from probegen.corpora import Corpora, load_corpora
from probegen.errors import UsageError
from probegen.review.agreement import agreement_report
from probegen.review.decisions import REJECT_REASONS, history, latest_decisions, record_decision
from probegen.review.queue import ReviewItem, build_queue, check_runs, disagreements, load_item
from probegen.review.reviewers import Reviewer, reviewer_for_token
from probegen.review.scope import DEFAULT_THRESHOLD, ItemNotOffered, ReviewScope, check_offered
from probegen.review.sessions import SessionPolicy, end_session, session_reviewer, start_session
from probegen.review.web.security import (
    CSRF_FIELD,
    LOOPBACK_HOSTS,
    SecurityHeaders,
    checked_form,
    csrf_token,
    media_file,
    session_secret,
)
from probegen.store import Store

__all__ = ["ReviewSettings", "create_app"]

HERE = Path(__file__).parent
Handler = Callable[[Request], Awaitable[Response]]
FormHandler = Callable[[Request, FormData], Awaitable[Response]]


@dataclass(frozen=True)
class ReviewSettings:
    """What ``probegen review serve`` was started with.

    Attributes:
        store_path: The run store (its directory is the run directory media must stay in).
        runs: Run ids to review (empty: every run with elites).
        threshold: Minimum elite fitness for the queue.
        k: Reviews each item needs.
        corpora: Corpora for validating edits and labels (default: the shipped ones).
        allowed_hosts: Host header values to answer (see
            :func:`~probegen.review.web.security.allowed_hosts`); others get 400.
        secure_cookies: Mark the session cookie ``Secure`` (browsers then send it only
            over HTTPS: for a server behind a TLS proxy).
        sessions: Idle and absolute session lifetimes.
    """

    store_path: Path
    runs: tuple[str, ...] = ()
    threshold: float = DEFAULT_THRESHOLD
    k: int = 2
    corpora: Corpora | None = None
    allowed_hosts: tuple[str, ...] = LOOPBACK_HOSTS
    secure_cookies: bool = False
    sessions: SessionPolicy = field(default_factory=SessionPolicy)

    @property
    def scope(self) -> ReviewScope:
        """What the queue offers, and so what a decision may be made on."""
        return ReviewScope(runs=self.runs, threshold=self.threshold)


def _state(request: Request) -> tuple[Store, ReviewSettings]:
    return request.app.state.store, request.app.state.settings


def _reviewer(request: Request) -> Reviewer | None:
    # Looked up in the store once per request: a logout, a removal or an expiry takes
    # effect at the next request, whatever cookie the client holds.
    if getattr(request.state, "reviewer_checked", False):
        found: Reviewer | None = request.state.reviewer
        return found
    store, settings = _state(request)
    session_id = request.session.get("sid")
    reviewer = None
    if isinstance(session_id, str):
        reviewer = session_reviewer(store, session_id, settings.sessions)
        if reviewer is None:
            request.session.pop("sid")  # a dead id: drop it from the cookie
    request.state.reviewer, request.state.reviewer_checked = reviewer, True
    return reviewer


def _render(request: Request, name: str, status: int = 200, **context: Any) -> Response:
    templates: Jinja2Templates = request.app.state.templates
    flash = request.session.pop("flash", None)
    context = {
        "csrf_field": CSRF_FIELD,
        "csrf_token": csrf_token(request),
        "reviewer": _reviewer(request),
        "flash": flash,
        "error": None,
        **context,
    }
    return templates.TemplateResponse(request, name, context, status_code=status)


def _login_required(handler: Handler) -> Handler:
    async def guarded(request: Request) -> Response:
        if _reviewer(request) is None:
            return RedirectResponse("/login", status_code=303)
        return await handler(request)

    return guarded


def _state_changing(handler: FormHandler) -> Handler:
    # Every POST route is built through here, so none can forget the CSRF check.
    async def checked(request: Request) -> Response:
        form = await checked_form(request)
        return await handler(request, form)

    return checked


def _queue(request: Request, reviewer: Reviewer) -> list[ReviewItem]:
    store, settings = _state(request)
    return build_queue(
        store,
        runs=settings.runs or None,
        threshold=settings.threshold,
        k=settings.k,
        reviewer=reviewer.name,
    )


# -- pages ---------------------------------------------------------------------------


async def login_page(request: Request) -> Response:
    return _render(request, "login.html")


async def login(request: Request, form: FormData) -> Response:
    store, _ = _state(request)
    token = str(form.get("token") or "").strip()
    reviewer = reviewer_for_token(store, token) if token else None
    if reviewer is None:
        return _render(
            request, "login.html", status=401, error="unknown token: ask for `review add-reviewer`"
        )
    _end_session(request)
    request.session.clear()  # a fresh session id (and CSRF token) per login
    request.session["sid"] = start_session(store, reviewer)
    return RedirectResponse("/", status_code=303)


async def logout(request: Request, form: FormData) -> Response:
    _end_session(request)
    request.session.clear()
    return RedirectResponse("/login", status_code=303)


def _end_session(request: Request) -> None:
    store, _ = _state(request)
    session_id = request.session.get("sid")
    if isinstance(session_id, str):
        end_session(store, session_id)


def _offered_or_http_error(request: Request) -> None:
    """404 for an item outside the served runs (or no elite), 403 below the threshold:
    the item page and every decision on it answer alike."""
    store, settings = _state(request)
    run_id, probe_id = request.path_params["run_id"], request.path_params["probe_id"]
    try:
        check_offered(store, settings.scope, run_id, probe_id)
    except ItemNotOffered as error:
        raise _not_offered(error) from None


def _not_offered(error: ItemNotOffered) -> HTTPException:
    return HTTPException(404 if error.kind == "unknown" else 403, str(error))


@_login_required
async def queue_page(request: Request) -> Response:
    store, settings = _state(request)
    reviewer = _reviewer(request)
    assert reviewer is not None
    queue = _queue(request, reviewer)
    elites = sum(len(store.elites(run_id)) for run_id in check_runs(store, settings.runs))
    return _render(request, "queue.html", queue=queue, settings=settings, elites=elites)


@_login_required
async def item_page(request: Request) -> Response:
    return _item_response(request)


def _item_response(
    request: Request, status: int = 200, error: str | None = None, **form: Any
) -> Response:
    store, settings = _state(request)
    run_id, probe_id = request.path_params["run_id"], request.path_params["probe_id"]
    _offered_or_http_error(request)
    item = load_item(store, run_id, probe_id)
    if item is None:
        raise HTTPException(404, f"no elite {probe_id} in run {run_id}")
    reviewer = _reviewer(request)
    mine = [d for d in item.decisions if reviewer is not None and d.reviewer_id == reviewer.id]
    corpora = settings.corpora or request.app.state.corpora
    return _render(
        request,
        "item.html",
        status=status,
        item=item,
        history=history(store, run_id, probe_id),
        mine=mine[-1] if mine else None,
        reasons=REJECT_REASONS,
        taxonomy=corpora.taxonomy,
        error=error,
        form=form,
        k=settings.k,
    )


async def decide(request: Request, form: FormData) -> Response:
    reviewer = _reviewer(request)
    if reviewer is None:
        return RedirectResponse("/login", status_code=303)
    store, settings = _state(request)
    run_id, probe_id = request.path_params["run_id"], request.path_params["probe_id"]
    _offered_or_http_error(request)
    fields = {key: str(value) for key, value in form.items() if key != CSRF_FIELD}
    action = fields.get("action", "")
    labels = None
    if action == "relabel":
        labels = {name: fields.get(name, "") for name in ("superdomain", "domain", "topic")}
    try:
        decision = record_decision(
            store,
            reviewer,
            (run_id, probe_id),
            action,
            reason=(fields.get("reason") or None) if action == "reject" else None,
            note=fields.get("note") or None,
            template=fields.get("template") if action == "edit" else None,
            labels=labels,
            corpora=settings.corpora or request.app.state.corpora,
            scope=settings.scope,
        )
    except ItemNotOffered as error:  # the elites changed since the check above
        raise _not_offered(error) from None
    except UsageError as error:
        return _item_response(request, status=400, error=str(error), **fields)
    done = {"accept": "accepted", "reject": "rejected", "edit": "edited", "relabel": "relabelled"}
    message = f"{done.get(action, 'skipped')} {probe_id}"
    if decision.revision_id:
        message += f": revision {decision.revision_id} must be re-queried and re-scored"
    request.session["flash"] = message
    upcoming = [i for i in _queue(request, reviewer) if i.key != (run_id, probe_id)]
    target = f"/item/{upcoming[0].run_id}/{upcoming[0].probe_id}" if upcoming else "/"
    return RedirectResponse(target, status_code=303)


@_login_required
async def adjudicate_page(request: Request) -> Response:
    store, settings = _state(request)
    items = disagreements(
        store, k=settings.k, runs=settings.runs or None, threshold=settings.threshold
    )
    return _render(request, "adjudicate.html", items=items, reasons=REJECT_REASONS)


@_login_required
async def stats_page(request: Request) -> Response:
    store, settings = _state(request)
    run_ids = check_runs(store, settings.runs)
    report = agreement_report(store, run_ids)
    reasons = Counter(
        d.reason for d in latest_decisions(store) if d.run_id in run_ids and d.reason is not None
    )
    pending = build_queue(store, runs=run_ids, threshold=settings.threshold, k=settings.k)
    return _render(
        request,
        "stats.html",
        report=report,
        reasons={REJECT_REASONS[r]: n for r, n in reasons.most_common()},
        pending=len(pending),
        settings=settings,
    )


@_login_required
async def media(request: Request) -> Response:
    store, _ = _state(request)
    found = media_file(store.path.parent, request.path_params["path"])
    if found is None:
        raise HTTPException(404, "no such image in this run directory")
    path, media_type = found
    return FileResponse(path, media_type=media_type)


def _routes() -> Sequence[Route | Mount]:
    return [
        Route("/", queue_page, name="queue"),
        Route("/login", login_page, methods=["GET"], name="login_page"),
        Route("/login", _state_changing(login), methods=["POST"], name="login"),
        Route("/logout", _state_changing(logout), methods=["POST"], name="logout"),
        Route("/item/{run_id}/{probe_id}", item_page, methods=["GET"], name="item"),
        Route("/item/{run_id}/{probe_id}", _state_changing(decide), methods=["POST"]),
        Route("/adjudicate", adjudicate_page, name="adjudicate"),
        Route("/stats", stats_page, name="stats"),
        Route("/media/{path:path}", media, name="media"),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]


def create_app(settings: ReviewSettings) -> Starlette:
    """The review app for one run store.

    Raises:
        UsageError: If a run in ``settings.runs`` is not in the store (checked at start).
    """
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,  # every {{ }} is HTML-escaped: answers are untrusted text
        undefined=jinja2.StrictUndefined,
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        store = Store(settings.store_path)
        try:
            check_runs(store, settings.runs)
            app.state.store = store
            app.state.settings = settings
            app.state.corpora = settings.corpora or load_corpora()
            app.state.templates = Jinja2Templates(env=env)
            yield
        finally:
            store.close()

    return Starlette(
        routes=list(_routes()),
        middleware=[
            Middleware(SecurityHeaders),
            # Before anything reads the request: a foreign Host is DNS rebinding or a
            # misrouted proxy, and gets 400 without a session cookie.
            Middleware(
                TrustedHostMiddleware,
                allowed_hosts=list(settings.allowed_hosts),
                www_redirect=False,
            ),
            Middleware(
                SessionMiddleware,
                secret_key=session_secret(),
                session_cookie="probegen_review",
                max_age=settings.sessions.max_s,  # the server ends it then anyway
                same_site="strict",
                https_only=settings.secure_cookies,
            ),
        ],
        lifespan=lifespan,
    )
