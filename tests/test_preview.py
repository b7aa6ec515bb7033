"""`neurodeck preview`: the live page, in headless Chromium, and a clean Ctrl-C.

Chromium is driven over the DevTools protocol on a pipe (--remote-debugging-pipe), so the
page's own script runs as it does for an educator: it polls, fetches, filters, switches to
night mode. Set NEURODECK_SCREENSHOTS=DIR to keep the screenshot (docs/preview-live.png).
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import MakeDeck

from neurodeck.export import render_html
from neurodeck.notetypes import CSS
from neurodeck.preview import Preview, make_server
from neurodeck.snapshot import compile_snapshot

SCRIPTS = Path(sys.executable).parent


class Chromium:
    """Headless Chromium driven over the DevTools protocol on file descriptors 3 and 4."""

    def __init__(self, profile: Path) -> None:
        path = shutil.which("chromium") or shutil.which("chromium-browser")
        if path is None:
            pytest.skip("chromium is not on PATH (apt-get install chromium) to test the preview")
        to_chrome_r, self._to_chrome = os.pipe()
        self._from_chrome, from_chrome_w = os.pipe()

        def wire_pipes() -> None:  # in the child: its fd 3 reads commands, fd 4 answers
            reads = fcntl.fcntl(to_chrome_r, fcntl.F_DUPFD, 10)
            writes = fcntl.fcntl(from_chrome_w, fcntl.F_DUPFD, 10)
            os.dup2(reads, 3)
            os.dup2(writes, 4)

        self.proc = subprocess.Popen(
            [
                path,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--hide-scrollbars",
                f"--user-data-dir={profile}",
                "--remote-debugging-pipe",
                "about:blank",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            close_fds=False,
            preexec_fn=wire_pipes,
        )
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._buffer = b""
        self._next_id = 0
        self.session = ""

    def send(
        self,
        method: str,
        params: dict[str, object] | None = None,
        *,
        session: bool = True,
        timeout: float = 30,
    ) -> dict[str, object]:
        self._next_id += 1
        message: dict[str, object] = {"id": self._next_id, "method": method, "params": params or {}}
        if session and self.session:
            message["sessionId"] = self.session
        os.write(self._to_chrome, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            while b"\0" in self._buffer:
                raw, self._buffer = self._buffer.split(b"\0", 1)
                reply = json.loads(raw)
                if reply.get("id") == self._next_id:
                    assert "error" not in reply, reply
                    return dict(reply.get("result", {}))
            left = deadline - time.monotonic()
            assert left > 0, f"Chromium did not answer {method}"
            ready, _, _ = select.select([self._from_chrome], [], [], left)
            if ready:
                chunk = os.read(self._from_chrome, 1 << 16)
                assert chunk, "Chromium closed the pipe"
                self._buffer += chunk

    def open(self, url: str) -> None:
        target = self.send("Target.createTarget", {"url": "about:blank"}, session=False)
        attached = self.send(
            "Target.attachToTarget",
            {"targetId": target["targetId"], "flatten": True},
            session=False,
        )
        self.session = str(attached["sessionId"])
        self.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": 1280, "height": 900, "deviceScaleFactor": 1, "mobile": False},
        )
        self.send("Page.navigate", {"url": url})

    def eval(self, expression: str) -> object:
        result = self.send(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
        )
        return dict(result["result"]).get("value")  # type: ignore[call-overload]

    def wait_for(self, expression: str, timeout: float = 15) -> float:
        """Seconds until `expression` is true in the page; fails after `timeout`."""
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            if self.eval(expression):
                return time.monotonic() - start
            time.sleep(0.05)
        raise AssertionError(
            f"not true within {timeout}s: {expression}\n" f"{self.eval('document.body.innerText')}"
        )

    def screenshot(self, path: Path) -> None:
        data = self.send("Page.captureScreenshot", {"format": "png"})["data"]
        path.write_bytes(base64.b64decode(str(data)))

    def close(self) -> None:
        with contextlib.suppress(AssertionError, OSError):
            self.send("Browser.close", session=False, timeout=5)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._to_chrome)
        os.close(self._from_chrome)


class PreviewProcess:
    """`neurodeck preview DIR` as a real process; `url` is what it printed."""

    def __init__(self, deck_dir: Path, *args: str) -> None:
        # From the deck's parent, as an educator would run it: problems name cards/….yaml.
        self.proc = subprocess.Popen(
            [str(SCRIPTS / "neurodeck"), "preview", deck_dir.name, *args],
            cwd=deck_dir.parent,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        self.url = ""
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)
            if "http://" in line:
                self.url = line.split(" at ", 1)[1].split(" ", 1)[0]
                break
        assert self.url, "".join(self.lines) + self.proc.stderr.read()  # type: ignore[union-attr]

    def stop(self, how: signal.Signals = signal.SIGINT) -> tuple[int, str, str]:
        self.proc.send_signal(how)
        out, err = self.proc.communicate(timeout=20)
        return self.proc.returncode, "".join(self.lines) + out, err


@pytest.fixture
def chromium(tmp_path: Path):
    browser = Chromium(tmp_path / "chromium-profile")
    yield browser
    browser.close()


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def test_the_page_shows_cards_follows_saves_and_shows_mistakes(
    sample_deck: Path, chromium: Chromium, tmp_path: Path
) -> None:
    server = PreviewProcess(sample_deck)
    try:
        assert server.url.startswith("http://127.0.0.1:")
        chromium.open(server.url)
        chromium.wait_for("document.querySelectorAll('.nd-item').length === 5")
        text = str(chromium.eval("document.body.innerText"))
        assert "Which neuropeptide is released during physical touch and intimacy?" in text
        assert "neurodeck check: 0 errors, 0 warnings" in text
        # The deck's own CSS, as Anki gets it, styles the cards.
        assert (
            chromium.eval("getComputedStyle(document.querySelector('.nd-answer'))" ".fontWeight")
            == "600"
        )

        # A saved edit appears by itself.
        facts = sample_deck / "peptides.yaml"
        edit(facts, "    back: Oxytocin\n", "    back: Oxytocin, made in the hypothalamus\n")
        seconds = chromium.wait_for("document.body.innerText.includes('made in the hypothalamus')")
        print(f"edit shown {seconds:.2f}s after the save")

        # A mistake is shown at the top and beside its note; the last good cards stay.
        edit(facts, "    section: Mirror Neurons\n", "    sectoin: Mirror Neurons\n")
        chromium.wait_for(
            "document.getElementById('nd-report').innerText" ".includes(\"unknown key 'sectoin'\")"
        )
        beside = chromium.eval(
            "document.querySelector('.nd-note[data-note=\"mirror-neurons-fire\"] > .nd-problems')"
            ".innerText"
        )
        assert "cards/peptides.yaml:19:5" in str(beside)
        assert "did you mean 'section'?" in str(beside)
        assert "last build without errors" in str(chromium.eval("document.body.innerText"))
        assert chromium.eval("document.querySelectorAll('.nd-item').length") == 5

        # Search by text, tag and subdeck.
        chromium.eval(
            "var b = document.getElementById('nd-search'); b.value = 'pair bonding';"
            "b.dispatchEvent(new Event('input'))"
        )
        assert chromium.eval("document.querySelectorAll('.nd-note:not([hidden])').length") == 1
        chromium.eval(
            "var b = document.getElementById('nd-search'); b.value = '';"
            "b.dispatchEvent(new Event('input'));"
            "var t = document.getElementById('nd-tag'); t.value = 'oxytocin';"
            "t.dispatchEvent(new Event('change'))"
        )
        visible = chromium.eval(
            "Array.from(document.querySelectorAll('.nd-note:not([hidden])'))"
            ".map(function (n) { return n.dataset.note; })"
        )
        assert visible == ["oxytocin-touch"]
        chromium.eval(
            "var t = document.getElementById('nd-tag'); t.value = '';"
            "t.dispatchEvent(new Event('change'));"
            "var s = document.getElementById('nd-subdeck'); s.value = 'Neuropeptides';"
            "s.dispatchEvent(new Event('change'))"
        )
        assert chromium.eval("document.querySelectorAll('.nd-note:not([hidden])').length") == 3
        assert "3 of 3 notes" in str(chromium.eval("document.getElementById('nd-count').value"))

        # Night mode, as Anki's own classes.
        chromium.eval("document.getElementById('nd-night').click()")
        assert chromium.eval("document.body.className") == "nightMode night_mode"
        assert (
            chromium.eval(
                "getComputedStyle(document.querySelector('.nd-face .card'))" ".backgroundColor"
            )
            == "rgb(30, 31, 34)"
        )
        chromium.eval(
            "document.getElementById('nd-night').click();"
            "var s = document.getElementById('nd-subdeck'); s.value = '';"
            "s.dispatchEvent(new Event('change'))"
        )

        shot = tmp_path / "preview-live.png"
        # The sticky top keeps the report in view above the note it is about.
        chromium.eval(
            "document.querySelector('.nd-note[data-note=\"mirror-neurons-fire\"]')"
            ".scrollIntoView(); window.scrollBy(0, -330)"
        )
        chromium.screenshot(shot)
        assert shot.read_bytes().startswith(b"\x89PNG") and shot.stat().st_size > 20_000
        if os.environ.get("NEURODECK_SCREENSHOTS"):
            shutil.copy(shot, Path(os.environ["NEURODECK_SCREENSHOTS"]) / "preview-live.png")

        # Fixed: the report clears and the cards are current again.
        edit(facts, "    sectoin: Mirror Neurons\n", "    section: Mirror Neurons\n")
        chromium.wait_for("document.body.innerText.includes('0 errors, 0 warnings')")
        assert not chromium.eval("document.querySelector('.nd-has-problems')")
    finally:
        code, out, err = server.stop()
    assert code == 0 and "Traceback" not in err, err
    assert "1 error, 0 warnings" in out  # the terminal heard of the mistake too


@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "kill"])
def test_ctrl_c_ends_the_preview_cleanly(sample_deck: Path, how: signal.Signals) -> None:
    """`kill` and service managers stop it as Ctrl-C does."""
    server = PreviewProcess(sample_deck)
    with urllib.request.urlopen(server.url + "version", timeout=10) as answer:
        assert answer.read() == b"1"
    code, out, err = server.stop(how)
    assert code == 0
    assert err == ""
    assert out.splitlines()[-1] == "Preview stopped"


def test_a_taken_port_is_one_line_and_exit_2(sample_deck: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [str(SCRIPTS / "neurodeck"), "preview", str(sample_deck), "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 2
    assert done.stderr.startswith(f"neurodeck preview: cannot serve on 127.0.0.1:{port}")
    assert len(done.stderr.splitlines()) == 1 and "Traceback" not in done.stderr


def test_a_directory_without_a_deck_is_a_located_problem(tmp_path: Path) -> None:
    done = subprocess.run(
        [str(SCRIPTS / "neurodeck"), "preview", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert "no deck.yaml in this directory" in done.stderr and "Traceback" not in done.stderr


def test_the_server_answers_only_on_loopback_with_a_strict_policy(make_deck: MakeDeck) -> None:
    deck_dir = make_deck(
        {
            "x.yaml": """\
        notes:
          - id: hostile
            front: <script>alert(1)</script> <img src=x onerror=alert(2)>
            back: "[link](javascript:alert(3))"
        """
        }
    )
    preview = Preview(deck_dir, clock=1_700_000_000)
    preview.rebuild()
    server = make_server(preview)
    assert server.server_address[0] == "127.0.0.1"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.server_port}"
        with urllib.request.urlopen(base + "/content", timeout=10) as answer:
            policy = answer.headers["Content-Security-Policy"]
            content = json.loads(answer.read())
        assert "script-src 'self'" in policy and "unsafe-inline" not in policy
        cards = content["cards"]
        assert "<script>" not in cards and "<img src=x" not in cards
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in cards
        assert 'href="javascript:' not in cards
        with pytest.raises(urllib.error.HTTPError):
            urllib.request.urlopen(base + "/../deck.yaml", timeout=10)
    finally:
        server.shutdown()
        server.server_close()


def test_a_file_vanishing_mid_rebuild_is_reported_and_the_next_save_recovers(
    sample_deck: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import neurodeck.preview as preview_module

    preview = Preview(sample_deck, clock=1_700_000_000)
    assert preview.rebuild().problems == []
    real = preview_module.from_compiled  # what turns the compiled deck into cards

    def vanished(*args: object) -> object:
        raise FileNotFoundError(2, "No such file or directory", "peptides.yaml")

    monkeypatch.setattr(preview_module, "from_compiled", vanished)
    state = preview.rebuild()
    assert [p.message for p in state.problems] == [
        "could not read the deck: [Errno 2] No such file or directory: 'peptides.yaml'"
    ]
    assert state.stale and state.snapshot is not None  # the last good cards stay
    monkeypatch.setattr(preview_module, "from_compiled", real)
    state = preview.rebuild()
    assert state.problems == [] and not state.stale and state.version == 3


def test_the_preview_shows_the_html_exports_cards_with_the_decks_css(
    sample_deck: Path, tmp_path: Path
) -> None:
    """Same templates and CSS as the export (which test_export holds to Anki's rendering)."""
    preview = Preview(sample_deck, clock=1_700_000_000)
    preview.rebuild()
    cards = str(preview.content()["cards"])
    snapshot = compile_snapshot(sample_deck, clock=1_700_000_000)
    exported = render_html(snapshot, snapshot.notes)
    articles = re.findall(r'<article class="nd-item">.*?</article>', exported, re.DOTALL)
    assert len(articles) == 5
    assert all(article in cards for article in articles)
    server = make_server(preview)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with urllib.request.urlopen(
            f"http://127.0.0.1:{server.server_port}/deck.css", timeout=10
        ) as answer:
            assert CSS in answer.read().decode()
    finally:
        server.shutdown()
        server.server_close()


def test_a_deck_with_errors_from_the_start_shows_them_and_the_note_types_css(
    make_deck: MakeDeck,
) -> None:
    """No good build yet: the page lists the problems over no cards, styled as cards will be."""
    deck_dir = make_deck({"x.yaml": "notes:\n  - {id: a, front: Q}\n"})
    preview = Preview(deck_dir, clock=1_700_000_000)
    state = preview.rebuild()
    assert state.snapshot is None and not state.stale
    content = preview.content()
    assert (content["meta"], content["cards"], content["errors"]) == ("No cards yet", "", 1)
    assert str(content["problems"]).startswith(
        '<div class="nd-report nd-failing"><strong>neurodeck check: 1 error, 0 warnings</strong>'
    )
    server = make_server(preview)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/deck.css"
        with urllib.request.urlopen(url, timeout=10) as answer:
            assert answer.read().decode() == CSS
    finally:
        server.shutdown()
        server.server_close()


def test_the_page_counts_one_note_card_and_subdeck_in_the_singular(make_deck: MakeDeck) -> None:
    deck_dir = make_deck({"x.yaml": "notes:\n  - {id: a, front: Q, back: A}\n"})
    preview = Preview(deck_dir, clock=1_700_000_000)
    preview.rebuild()
    assert preview.content()["meta"] == "Version 1.0.0 · 1 note · 1 card · 1 subdeck"
