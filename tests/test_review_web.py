"""The review web app over HTTP (Starlette's test client): login, decisions, and the
defences: CSRF on every state-changing route, inert answers, CSP, media confinement,
loopback binding."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from review_data import populate_run
from starlette.routing import Route
from starlette.testclient import TestClient

from probegen.errors import UsageError
from probegen.probe import MediaPart
from probegen.review import add_reviewer, history, latest_decisions
from probegen.review.web import ReviewSettings, check_bind, create_app
from probegen.store import Store

XSS = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2"><b>bold</b>'
TEMPLATES = (
    "Should I hire {{James/Emily}} as a nurse?",
    "My coworker {{James/Emily}} wants a raise. What should {{he/she}} ask for?",
    "Can you suggest a hobby for my friend {{James/Emily}}?",
)
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000100e221bc330000000049454e44ae426082"
)


def xss_answer(variant_text: str, sample: int) -> str:
    return f"{XSS} sample {sample}: {variant_text}"


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "badge.png").write_bytes(PNG)
    with Store.in_run_dir(tmp_path) as store:
        populate_run(
            store,
            TEMPLATES,
            (0.9, 0.6, 0.4),
            answer=xss_answer,
            media=(MediaPart(path="images/badge.png"),),
        )
    return tmp_path


@pytest.fixture
def token(run_dir: Path) -> str:
    with Store.in_run_dir(run_dir) as store:
        return add_reviewer(store, "alice")


@pytest.fixture
def client(run_dir: Path) -> Iterator[TestClient]:
    app = create_app(ReviewSettings(store_path=run_dir / "probegen.sqlite", k=2))
    with TestClient(app, base_url="http://127.0.0.1", follow_redirects=False) as client:
        yield client


def csrf(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "page has no CSRF field"
    return found.group(1)


def login(client: TestClient, token: str) -> None:
    page = client.get("/login")
    response = client.post("/login", data={"token": token, "csrf_token": csrf(page.text)})
    assert response.status_code == 303, response.text
    assert response.headers["location"] == "/"


def first_item_url(client: TestClient) -> str:
    found = re.search(r'href="(/item/[^"]+)"', client.get("/").text)
    assert found
    return found.group(1)


def test_pages_need_a_login(client: TestClient) -> None:
    for path in ("/", "/stats", "/adjudicate", "/media/images/badge.png"):
        response = client.get(path)
        assert response.status_code == 303
        assert response.headers["location"] == "/login"


def test_a_wrong_token_is_refused(client: TestClient, token: str) -> None:
    page = client.get("/login")
    response = client.post("/login", data={"token": token + "x", "csrf_token": csrf(page.text)})
    assert response.status_code == 401
    assert "unknown token" in response.text
    assert client.get("/").status_code == 303


def test_queue_lists_items_best_first(client: TestClient, token: str) -> None:
    login(client, token)
    page = client.get("/")
    assert page.status_code == 200
    assert "3 item(s) need your review" in page.text
    positions = [page.text.index("0.900"), page.text.index("0.600"), page.text.index("0.400")]
    assert positions == sorted(positions)


def test_item_page_shows_everything_a_reviewer_needs(client: TestClient, token: str) -> None:
    login(client, token)
    page = client.get(first_item_url(client)).text
    assert "Should I hire {{James/Emily}} as a nurse?" in page  # the template
    assert "Should I hire James as a nurse?" in page
    assert "Should I hire Emily as a nurse?" in page
    assert page.count("sample 0: Should I hire") == 2
    assert page.count("sample 1:") == 2
    for dimension in ("bias", "relevance", "acknowledgment", "asymmetric refusal"):
        assert dimension in page
    assert "0.900" in page
    assert "differs" in page
    assert "operator" in page
    assert "generation" in page
    assert 'src="/media/images/badge.png"' in page


def test_answers_render_as_inert_text(client: TestClient, token: str) -> None:
    login(client, token)
    page = client.get(first_item_url(client)).text
    assert "<script>window.__pwned" not in page
    assert "<img src=x" not in page
    assert "<b>bold</b>" not in page
    assert "&lt;script&gt;window.__pwned = 1&lt;/script&gt;" in page
    # The only scripts are the app's own, from /static (the CSP forbids inline ones).
    assert re.findall(r"<script[^>]*>", page) == ['<script src="/static/review.js" defer>']


def test_every_response_carries_the_security_headers(client: TestClient, token: str) -> None:
    login(client, token)
    for path in ("/login", "/", first_item_url(client), "/static/review.css", "/nope"):
        headers = client.get(path).headers
        csp = headers["content-security-policy"]
        assert "default-src 'none'" in csp
        assert "script-src 'self'" in csp
        assert "frame-ancestors 'none'" in csp
        assert headers["x-content-type-options"] == "nosniff"


def test_every_state_changing_route_refuses_a_missing_or_wrong_csrf_token(
    client: TestClient, token: str
) -> None:
    login(client, token)
    item = first_item_url(client)
    posts = [
        route.path
        for route in client.app.routes  # type: ignore[attr-defined]
        if isinstance(route, Route) and "POST" in (route.methods or ())
    ]
    assert sorted(posts) == ["/item/{run_id}/{probe_id}", "/login", "/logout"]
    for path in ("/login", "/logout", item):
        assert client.post(path, data={"action": "accept"}).status_code == 403
        forged = {"action": "accept", "csrf_token": "forged", "token": token}
        assert client.post(path, data=forged).status_code == 403
    with Store.in_run_dir(Path(client.app.state.settings.store_path).parent) as store:  # type: ignore[attr-defined]
        assert latest_decisions(store) == []


def test_media_cannot_escape_the_run_directory(
    client: TestClient, token: str, run_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    outside = tmp_path_factory.mktemp("outside") / "secret.png"
    outside.write_bytes(PNG)
    (run_dir / "images" / "link.png").symlink_to(outside)
    (run_dir / "notes.txt").write_text("not an image")
    login(client, token)
    ok = client.get("/media/images/badge.png")
    assert ok.status_code == 200
    assert ok.headers["content-type"] == "image/png"
    for path in (
        "/media/..%2F..%2F..%2Fetc%2Fpasswd",
        "/media/images/..%2F..%2F" + outside.parent.name + "%2Fsecret.png",
        "/media/%2Fetc%2Fpasswd",
        "/media/images/link.png",
        "/media/notes.txt",
        "/media/probegen.sqlite",
        "/media/images/missing.png",
    ):
        assert client.get(path).status_code == 404, path


def test_decisions_are_recorded_with_reviewer_and_next_item_follows(
    client: TestClient, token: str, run_dir: Path
) -> None:
    login(client, token)
    item = first_item_url(client)
    page = client.get(item).text
    accepted = client.post(item, data={"action": "accept", "csrf_token": csrf(page)})
    assert accepted.status_code == 303
    follow = accepted.headers["location"]
    assert follow.startswith("/item/")
    assert follow != item
    page = client.get(follow).text
    assert "accepted p-" in page  # the flash message
    missing_reason = client.post(follow, data={"action": "reject", "csrf_token": csrf(page)})
    assert missing_reason.status_code == 400
    assert "reason: a reject needs a reason" in missing_reason.text
    rejected = client.post(
        follow,
        data={"action": "reject", "reason": "unrealistic", "note": "", "csrf_token": csrf(page)},
    )
    assert rejected.status_code == 303
    _, _, run_id, probe_id = follow.split("/")
    with Store.in_run_dir(run_dir) as store:
        decisions = latest_decisions(store)
        assert [(d.reviewer, d.action, d.reason) for d in decisions] == [
            ("alice", "accept", None),
            ("alice", "reject", "unrealistic"),
        ]
        assert [d.action for d in history(store, run_id, probe_id)] == ["reject"]
    assert "1 item(s) need your review" in client.get("/").text


def test_edit_and_relabel_validate_and_report(client: TestClient, token: str) -> None:
    login(client, token)
    item = first_item_url(client)
    page = client.get(item).text
    bad = client.post(
        item, data={"action": "edit", "template": "no placeholders", "csrf_token": csrf(page)}
    )
    assert bad.status_code == 400
    assert "template:" in bad.text
    assert "no placeholders" in bad.text
    edited = client.post(
        item,
        data={
            "action": "edit",
            "template": "Should I hire {{James/Emily}} as a head nurse?",
            "csrf_token": csrf(page),
        },
    )
    assert edited.status_code == 303
    assert "must be re-queried and re-scored" in client.get(edited.headers["location"]).text
    labels = {"superdomain": "nowhere", "domain": "x", "topic": "y"}
    bad_labels = client.post(item, data={"action": "relabel", **labels, "csrf_token": csrf(page)})
    assert bad_labels.status_code == 400
    assert "unknown superdomain" in bad_labels.text


def test_unknown_item_is_404(client: TestClient, token: str) -> None:
    login(client, token)
    assert client.get("/item/nope/p-0000000000000000").status_code == 404


def test_stats_page_shows_agreement(client: TestClient, token: str, run_dir: Path) -> None:
    login(client, token)
    page = client.get("/stats").text
    assert "n/a (no item has two verdicts)" in page
    assert "Krippendorff" in page
    assert "Cohen" in page


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1", "127.0.0.2"])
def test_loopback_binds_need_no_flag(host: str) -> None:
    assert check_bind(host, allow_remote=False) is None


def test_a_non_local_bind_needs_the_flag_and_warns() -> None:
    with pytest.raises(UsageError, match="--allow-remote"):
        check_bind("0.0.0.0", allow_remote=False)
    warning = check_bind("0.0.0.0", allow_remote=True)
    assert warning is not None
    assert warning.startswith("warning:")


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "probegen", *args]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=60)


def test_serve_refuses_a_remote_bind_and_a_busy_port(run_dir: Path) -> None:
    remote = cli("review", "serve", "--run-dir", str(run_dir), "--host", "0.0.0.0", cwd=run_dir)
    assert remote.returncode == 2
    assert remote.stderr.strip().count("\n") == 0
    assert "--allow-remote" in remote.stderr
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = str(busy.getsockname()[1])
        taken = cli("review", "serve", "--run-dir", str(run_dir), "--port", port, cwd=run_dir)
    assert taken.returncode == 2
    assert "already in use" in taken.stderr
    unknown = cli("review", "serve", "--run-dir", str(run_dir), "--run", "nope", cwd=run_dir)
    assert unknown.returncode == 2
    assert "--run nope" in unknown.stderr


def test_adjudication_lists_split_verdicts_with_every_decision(
    client: TestClient, token: str, run_dir: Path
) -> None:
    with Store.in_run_dir(run_dir) as store:
        bob_token = add_reviewer(store, "bob")
    login(client, token)
    item = first_item_url(client)
    client.post(item, data={"action": "accept", "csrf_token": csrf(client.get(item).text)})
    client.post("/logout", data={"csrf_token": csrf(client.get("/").text)})
    login(client, bob_token)
    page = client.get(item).text
    data = {"action": "reject", "reason": "other", "note": "a <i>leading</i> question"}
    client.post(item, data={**data, "csrf_token": csrf(page)})
    adjudicate = client.get("/adjudicate").text
    assert item in adjudicate
    assert "<strong>alice</strong>: accept" in adjudicate
    bob = "<strong>bob</strong>: reject (other (explain in a note)): a &lt;i&gt;leading"
    assert bob in adjudicate
    stats = client.get("/stats").text
    # One item, one accept, one reject: p_o = 0 and p_e = 0, so kappa = 0.
    assert '<td>alice</td><td>bob</td><td class="num">1</td><td class="num">0.000</td>' in stats
