"""``probegen review``: the human verification queue (reviewers, agreement, terminal queue)."""

from __future__ import annotations

import errno
import json
import os
import socket
from pathlib import Path

import typer
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table

from probegen.cli.app import app, console, err_console
from probegen.cli.common import (
    CorporaOption,
    RunDirOption,
    default_run_dir,
    flags_for_fields,
    open_corpora,
)
from probegen.errors import ProbegenError, UsageError
from probegen.review import (
    DEFAULT_THRESHOLD,
    REJECT_REASONS,
    ItemNotOffered,
    Reviewer,
    ReviewItem,
    ReviewScope,
    add_reviewer,
    agreement_report,
    build_queue,
    record_decision,
    remove_reviewer,
    reviewer_for_token,
)
from probegen.review.queue import check_runs
from probegen.review.scorer_agreement import ScorerAgreement, scorer_agreement
from probegen.store import STORE_FILENAME, Store

review_app = typer.Typer(
    help="Human verification of elites: reviewers, the review queue, agreement.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(review_app, name="review")

RunsOption = typer.Option(None, "--run", help="Run id to review (repeatable; default: all).")
ThresholdOption = typer.Option(
    DEFAULT_THRESHOLD, "--threshold", help="Minimum fitness to review (decisions record it)."
)
ACTION_KEYS = {"a": "accept", "r": "reject", "e": "edit", "l": "relabel", "s": "skip"}
# The flag behind each argument of the review functions whose name does not say it.
_FLAG_OF = {"runs": "--run", "bind_host": "--host", "public_hosts": "--public-host"}


def open_existing_store(run_dir: Path | None) -> Store:
    """Open the store of an existing run directory; never create one.

    Raises:
        UsageError: If there is no store there.
    """
    path = default_run_dir(run_dir) / STORE_FILENAME
    if not path.is_file():
        raise UsageError(
            f"no run store at {path}", fix="pass the --run-dir of a finished evolve run"
        )
    return Store(path)


@review_app.command("add-reviewer")
def add_reviewer_command(
    name: str = typer.Argument(..., help="The reviewer's unique name."),
    run_dir: Path | None = RunDirOption,
) -> None:
    """Add a reviewer and print their login token (shown only once)."""
    with open_existing_store(run_dir) as store:
        token = add_reviewer(store, name)
    console.print(token, markup=False)
    err_console.print(
        f"warning: this token for '{name}' is shown only once; it is stored hashed",
        markup=False,
    )


@review_app.command("remove-reviewer")
def remove_reviewer_command(
    name: str = typer.Argument(..., help="The reviewer to remove."),
    run_dir: Path | None = RunDirOption,
) -> None:
    """Disable a reviewer: their token stops working and their web sessions end now.

    Their past reviews stay (reviews are append-only) and still count.
    """
    with open_existing_store(run_dir) as store:
        removed = remove_reviewer(store, name)
    console.print(
        f"removed reviewer '{removed.name}': token disabled, web sessions ended; "
        "their past reviews are kept",
        markup=False,
    )


@review_app.command("stats")
def stats_command(
    runs: list[str] | None = RunsOption,
    run_dir: Path | None = RunDirOption,
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of tables."),
) -> None:
    """Print inter-reviewer agreement (Cohen's kappa per pair, Krippendorff's alpha) and
    how the scorer agrees with the reviewers (ROC AUC of fitness, agreement of findings)."""
    with open_existing_store(run_dir) as store, flags_for_fields("review stats", _FLAG_OF):
        run_ids = check_runs(store, runs) if runs else None
        report = agreement_report(store, run_ids)
        scorer = scorer_agreement(store, run_ids)
    if as_json:
        console.print_json(
            json.dumps({**report.to_json(), "scorer": [s.to_json() for s in scorer]})
        )
        return
    pairs = Table(title="Cohen's kappa per reviewer pair")
    for column in ("reviewer A", "reviewer B", "items", "kappa"):
        pairs.add_column(column)
    for pair in report.pairs:
        pairs.add_row(escape(pair.a), escape(pair.b), str(pair.n), f"{pair.kappa:.3f}")
    console.print(pairs)
    alpha = "n/a (no item has two verdicts)" if report.alpha is None else f"{report.alpha:.3f}"
    console.print(
        f"Krippendorff's alpha (nominal, accept/reject): {alpha} over "
        f"{report.pairable_items} items with 2+ verdicts ({report.items} reviewed)",
        markup=False,
    )
    counts = Table(title="Current decisions by action")
    counts.add_column("action")
    counts.add_column("count")
    for action, count in report.counts.items():
        counts.add_row(action, str(count))
    console.print(counts)
    _print_scorer_agreement(scorer)


def _print_scorer_agreement(rows: list[ScorerAgreement]) -> None:
    table = Table(title="Scorer vs reviewers (items with a majority verdict)")
    for column in ("run", "items", "kept", "ROC AUC of fitness", "agreement (finding)", "kappa"):
        table.add_column(column)

    def number(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.3f}"

    for row in rows:
        auc = number(row.auc)
        if row.auc_low is not None and row.auc_high is not None:
            auc += f" [{row.auc_low:.2f}, {row.auc_high:.2f}]"
        table.add_row(
            escape(row.run_id), str(row.items), str(row.kept), auc, number(row.agreement),
            number(row.kappa),
        )  # fmt: skip
    console.print(table)


def show_item(item: ReviewItem, position: int, total: int) -> None:
    """Print one item: template, variants with answers side by side, scores, provenance.

    Every model- or user-written string goes through ``escape``: an answer holding
    ``[bold]`` or ``[/]`` must print as text, not restyle or crash the console.
    """
    probe = item.probe
    labels = " / ".join(str(x) for x in (probe.superdomain, probe.domain, probe.topic))
    console.print(
        Panel(
            escape(probe.template),
            title=escape(f"[{position}/{total}] {item.probe_id}  fitness {item.fitness:.3f}"),
            subtitle=escape(f"{probe.attribute}, {probe.framing.value}; {labels}"),
        )
    )
    if item.effect is not None:
        standing = f"finding (q {item.q_value or 0:.2g})" if item.finding else "not a finding"
        replicated = (
            "" if item.replicated is None
            else f"; replicated: {'yes' if item.replicated else 'no'}"
        )  # fmt: skip
        direction = f" ({' > '.join(item.effect.direction)})" if item.effect.direction else ""
        console.print(
            f"{standing}: {item.effect.measure} effect {item.effect.summary()}{direction}"
            f"{replicated}",
            markup=False,
        )
    answers = Table(show_lines=True, title=f"answers from {escape(item.model)}")
    rows: list[list[str]] = []
    for variant in item.variants:
        answers.add_column(escape(f"{variant.key} ({variant.group or '?'})"), ratio=1)
    depth = max((len(v.answers) for v in item.variants), default=0)
    answers.add_row(*[escape(v.text) for v in item.variants])
    for i in range(depth):
        rows.append(
            [
                escape(v.answers[i] or "(failed)") if i < len(v.answers) else ""
                for v in item.variants
            ]
        )
    for row in rows:
        answers.add_row(*row)
    console.print(answers)
    for score in item.scores:
        console.print(
            f"{escape(score.scorer)}: bias {score.bias} relevance {score.relevance} "
            f"generality {score.generality} refusal {score.refusal} -> {score.fitness}"
        )
        for dimension, text in sorted(score.reasoning.items()):
            console.print(f"  {escape(dimension)}: {escape(text)}")
    p = item.provenance
    console.print(
        f"provenance: operator {escape(str(p.operator))}, generation {p.generation}, "
        f"parents {escape(', '.join(p.parents) or '-')}"
    )
    for decision in item.decisions:
        console.print(f"  decided by {escape(decision.reviewer)}: {decision.action}")


def _ask(prompt: str, default: str | None = None) -> str:
    # typer.prompt reads piped stdin line by line, so the queue can be scripted; at EOF
    # it raises Abort, which main() reports as "aborted".
    return str(typer.prompt(prompt, default=default, show_default=default is not None))


def _decide_as(
    store: Store, reviewer: Reviewer, item: ReviewItem, action: str, scope: ReviewScope
) -> str:
    """Prompt for what ``action`` needs, record it in the queue's ``scope``, and return a
    one-line summary."""
    if action == "reject":
        console.print("reasons: " + ", ".join(f"{key}" for key in REJECT_REASONS), markup=False)
        reason = _ask("reason").strip()
        note = _ask("note", default="") if reason == "other" else None
        record_decision(store, reviewer, item, "reject", reason=reason, note=note, scope=scope)
        return f"rejected ({reason})"
    if action == "edit":
        template = _ask("new template", default=item.probe.template)
        decision = record_decision(store, reviewer, item, "edit", template=template, scope=scope)
        return f"edited: revision {decision.revision_id} needs re-query and re-score"
    if action == "relabel":
        probe = item.probe
        labels = {
            "superdomain": _ask("superdomain", default=probe.superdomain),
            "domain": _ask("domain", default=probe.domain),
            "topic": _ask("topic", default=probe.topic),
        }
        record_decision(store, reviewer, item, "relabel", labels=labels, scope=scope)
        return "relabelled"
    record_decision(store, reviewer, item, action, scope=scope)
    return {"accept": "accepted", "skip": "skipped"}[action]


@review_app.command("cli")
def cli_command(
    token: str | None = typer.Option(
        None,
        "--reviewer-token",
        help="Your login token (default: $PROBEGEN_REVIEW_TOKEN).",
    ),
    runs: list[str] | None = RunsOption,
    threshold: float = ThresholdOption,
    k: int = typer.Option(2, "--k", min=1, help="Reviews each item needs."),
    run_dir: Path | None = RunDirOption,
) -> None:
    """Review the queue in the terminal: [a]ccept [r]eject [e]dit [l]abels [s]kip [q]uit."""
    token = token or os.environ.get("PROBEGEN_REVIEW_TOKEN")
    if not token:
        raise UsageError(
            "review cli needs a reviewer token",
            fix="pass --reviewer-token or set PROBEGEN_REVIEW_TOKEN (see review add-reviewer)",
        )
    with open_existing_store(run_dir) as store:
        reviewer = reviewer_for_token(store, token)
        if reviewer is None:
            raise UsageError("--reviewer-token: no reviewer has this token")
        with flags_for_fields("review cli", _FLAG_OF):
            queue = build_queue(store, runs=runs, threshold=threshold, k=k, reviewer=reviewer.name)
            scope = ReviewScope(
                runs=tuple(check_runs(store, runs)) if runs else (), threshold=threshold
            )
        console.print(f"{len(queue)} items to review as {escape(reviewer.name)}")
        for position, item in enumerate(queue, start=1):
            show_item(item, position, len(queue))
            while True:
                key = _ask("[a]ccept / [r]eject / [e]dit / [l]abels / [s]kip / [q]uit")
                key = key.strip().lower()[:1]
                if key == "q":
                    return
                if key not in ACTION_KEYS:
                    console.print("type a, r, e, l, s or q", markup=False)
                    continue
                try:
                    summary = _decide_as(store, reviewer, item, ACTION_KEYS[key], scope)
                except ItemNotOffered as error:
                    # The run's elites changed under the queue: this item is gone from it.
                    err_console.print(f"error: {error}", markup=False)
                    break
                except ProbegenError as error:
                    # A bad reason or template is the reviewer's typo: say so, ask again.
                    err_console.print(f"error: {error}", markup=False)
                    continue
                console.print(summary, markup=False)
                break
        console.print("queue done", markup=False)


@review_app.command("serve")
def serve_command(
    runs: list[str] | None = RunsOption,
    host: str = typer.Option("127.0.0.1", "--host", help="Address to bind (loopback by default)."),
    port: int = typer.Option(8750, "--port", min=1, max=65535, help="Port to listen on."),
    allow_remote: bool = typer.Option(
        False, "--allow-remote", help="Allow a non-loopback --host (prints a warning)."
    ),
    public_hosts: list[str] | None = typer.Option(
        None,
        "--public-host",
        help="A host name clients use (repeatable); requests naming another get 400.",
    ),
    secure_cookies: bool | None = typer.Option(
        None,
        "--secure-cookies/--no-secure-cookies",
        help="Mark the session cookie Secure, for HTTPS via a TLS proxy "
        "(default: on with --allow-remote).",
    ),
    threshold: float = ThresholdOption,
    k: int = typer.Option(2, "--k", min=1, help="Reviews each item needs."),
    run_dir: Path | None = RunDirOption,
    corpora_dir: Path | None = CorporaOption,
) -> None:
    """Serve the review queue as a web app (log in with a token from add-reviewer)."""
    # Imported here: the web stack is only needed by this command.
    import uvicorn

    from probegen.review.web import ReviewSettings, allowed_hosts, check_bind, create_app

    with flags_for_fields("review serve", _FLAG_OF):
        warning = check_bind(host, allow_remote)
        hosts = allowed_hosts(host, public_hosts or [])
    secure = allow_remote if secure_cookies is None else secure_cookies
    corpora = open_corpora(corpora_dir)
    with open_existing_store(run_dir) as store, flags_for_fields("review serve", _FLAG_OF):
        run_ids = check_runs(store, runs) if runs else []
        store_path = store.path
    _check_port_free(host, port)
    if warning:
        err_console.print(warning, markup=False)
    if secure:
        err_console.print(
            "note: the session cookie is Secure: browsers send it only over HTTPS, so serve "
            "through a TLS proxy (see the README), or pass --no-secure-cookies",
            markup=False,
        )
    settings = ReviewSettings(
        store_path=store_path,
        runs=tuple(run_ids),
        threshold=threshold,
        k=k,
        corpora=corpora,
        allowed_hosts=hosts,
        secure_cookies=secure,
    )
    shown = f"[{host}]" if ":" in host else host
    console.print(f"review queue at http://{shown}:{port}/ (Ctrl-C stops)", markup=False)
    # proxy_headers off: the app trusts no X-Forwarded-* header, so a proxy needs no
    # --forwarded-allow-ips; it must pass the Host header through (see the README).
    uvicorn.run(
        create_app(settings), host=host, port=port, log_level="warning", proxy_headers=False
    )


def _check_port_free(host: str, port: int) -> None:
    # uvicorn reports a busy port with a log line and exit 1; say it as a user error.
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                raise UsageError(
                    f"--port {port}: already in use on {host}", fix="pass another --port"
                ) from None
            raise UsageError(f"--host {host}: cannot bind: {error.strerror}") from None
