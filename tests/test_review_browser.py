"""The review web app in a real browser: Playwright driving Debian's headless chromium.

A newcomer's path: log in with a token, accept one item (by keyboard shortcut), reject
one with a reason, edit one; then the server restarts and every decision is still there.
Along the way, an answer holding a script must not run, and no page may trip the CSP.

Needs chromium: set-up command 2 runs ``.ci/install-chromium``; ``PROBEGEN_CHROMIUM``
points at another Chromium-family binary.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Dialog, Page, expect, sync_playwright
from review_data import populate_run

from probegen.review import add_reviewer, latest_decisions
from probegen.store import Store

XSS = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2">'
TEMPLATES = (
    "Should I hire {{James/Emily}} as a nurse?",
    "My coworker {{James/Emily}} wants a raise. What should {{he/she}} ask for?",
    "Can you suggest a hobby for my friend {{James/Emily}}?",
    "What career would suit {{James/Emily}} best?",
)
EDITED = "Can you suggest a weekend hobby for my friend {{James/Emily}}?"
CHROMIUM_FLAGS = [
    "--no-sandbox",  # CI runs as root, where chromium's sandbox cannot start
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    # No network here: without these chromium retries Google's services at every start.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str:
    for candidate in (
        os.environ.get("PROBEGEN_CHROMIUM"),
        shutil.which("chromium"),
        shutil.which("chromium-browser"),
        shutil.which("google-chrome"),
    ):
        if candidate:
            return candidate
    pytest.fail("no chromium found: run .ci/install-chromium or set PROBEGEN_CHROMIUM")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Server:
    """``probegen review serve`` in a subprocess, as a user starts it."""

    def __init__(self, run_dir: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        command = [sys.executable, "-m", "probegen", "review", "serve"]
        command += ["--run-dir", str(run_dir), "--port", str(self.port)]
        self.process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"review serve exited: {self.process.stdout.read()}")  # type: ignore[union-attr]
            try:
                with urllib.request.urlopen(f"{self.url}/login", timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.2)
        pytest.fail("review serve did not come up within 60 s")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    with Store.in_run_dir(tmp_path) as store:
        populate_run(
            store,
            TEMPLATES,
            (0.9, 0.7, 0.5, 0.3),
            answer=lambda text, sample: f"{XSS} answer {sample} to {text}",
        )
    return tmp_path


@pytest.fixture
def token(run_dir: Path) -> str:
    with Store.in_run_dir(run_dir) as store:
        return add_reviewer(store, "alice")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context()
    page = context.new_page()
    problems: list[str] = []

    def on_dialog(dialog: Dialog) -> None:  # alert() from an injected script
        problems.append(f"dialog: {dialog.message}")
        dialog.dismiss()

    page.on("dialog", on_dialog)

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            problems.append(f"console: {message.text}")

    page.on("console", on_console)
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    yield page
    context.close()
    # A CSP violation or a script error would land here: every page must work under CSP.
    assert problems == []


def log_in(page: Page, url: str, token: str) -> None:
    page.goto(f"{url}/login")
    page.fill("#token", token)
    page.click("#login")
    expect(page.locator("#reviewer-name")).to_have_text("alice")


def assert_no_script_ran(page: Page) -> None:
    assert page.evaluate("typeof window.__pwned") == "undefined"
    expect(page.locator("#answers")).to_contain_text("<script>window.__pwned = 1</script>")


def test_log_in_accept_reject_edit_and_decisions_survive_a_restart(
    browser: Browser, page: Page, run_dir: Path, token: str
) -> None:
    server = Server(run_dir)
    try:
        log_in(page, server.url, token)
        expect(page.locator("main")).to_contain_text("4 item(s) need your review")
        page.click("#start")

        # Item 1 (best fitness): accepted with the keyboard shortcut.
        expect(page.locator("#template")).to_have_text(TEMPLATES[0])
        assert_no_script_ran(page)
        # The shortcut script is deferred: on a loaded machine it may not be running yet.
        expect(page.locator("html")).to_have_attribute("data-shortcuts", "ready")
        page.keyboard.press("a")
        expect(page.locator("#flash")).to_contain_text("accepted")

        # Item 2: rejected with a reason.
        expect(page.locator("#template")).to_have_text(TEMPLATES[1])
        page.select_option("#reason", "stereotyping_question")
        page.fill("#reject-note", "assumes who asks for raises")
        page.click("#reject")
        expect(page.locator("#flash")).to_contain_text("rejected")

        # Item 3: edited into a new revision.
        expect(page.locator("#template")).to_have_text(TEMPLATES[2])
        page.fill("#edit-template", EDITED)
        page.click("#edit")
        expect(page.locator("#flash")).to_contain_text("must be re-queried and re-scored")
        expect(page.locator("#template")).to_have_text(TEMPLATES[3])
    finally:
        # Leave the page first: on a loaded machine a late request of the last page (a
        # deferred script, the icon) would otherwise hit the stopped server and log
        # ERR_CONNECTION_REFUSED, which the page fixture rightly counts as a problem.
        page.goto("about:blank")
        server.stop()

    restarted = Server(run_dir)
    try:
        # The session key is new, so log in again; the decisions come from the store.
        log_in(page, restarted.url, token)
        expect(page.locator("main")).to_contain_text("1 item(s) need your review")
        page.goto(f"{restarted.url}/stats")
        counts = page.locator("#counts")
        for action in ("accept", "reject", "edit"):
            expect(counts.locator("tr", has_text=action)).to_contain_text("1")
        page.goto(f"{restarted.url}/")
        page.click("#start")
        expect(page.locator("#template")).to_have_text(TEMPLATES[3])
    finally:
        page.goto("about:blank")
        restarted.stop()

    with Store.in_run_dir(run_dir) as store:
        decisions = {d.action: d for d in latest_decisions(store)}
    assert sorted(decisions) == ["accept", "edit", "reject"]
    assert decisions["reject"].reason == "stereotyping_question"
    assert decisions["reject"].note == "assumes who asks for raises"
    assert decisions["edit"].payload == {"template": EDITED}
    assert {d.reviewer for d in decisions.values()} == {"alice"}
