"""Notifications to a real loopback receiver: signed webhook, Apprise, retries, dead receivers."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from consolefixtures import LiveDaemon
from enginefixtures import Engine
from helpers import wait_until

from synthesia_watchd.engine import lifecycle
from synthesia_watchd.engine.notify import SIGNATURE_HEADER, Message, Notifications, WebhookSender

KEY = b"webhook-signing-key-for-tests"


class Receiver:
    """A loopback HTTP server that records every POST; it can fail or hang on purpose."""

    def __init__(self) -> None:
        self.received: list[tuple[str, dict[str, str], bytes]] = []
        self.fail_first = 0
        self.hang = threading.Event()  # set: requests block until ``release`` is set
        self.release = threading.Event()
        self.blocked = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if receiver.hang.is_set():
                    receiver.blocked.set()
                    receiver.release.wait(30)
                if receiver.fail_first > 0:
                    receiver.fail_first -= 1
                    self.send_response(500)
                    self.end_headers()
                    return
                receiver.received.append((self.path, dict(self.headers), body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def events(self) -> list[dict[str, Any]]:
        return [json.loads(body) for _, _, body in self.received]

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def _webhook(engine: Engine, receiver: Receiver, tmp_path: Path, **extra: Any) -> None:
    key_file = tmp_path / "hook.key"
    key_file.write_bytes(KEY + b"\n")
    engine.settings = {
        "notify": {"webhook": {"url": receiver.url, "secret_file": str(key_file)}, **extra}
    }


def test_done_is_sent_signed_and_without_secrets(
    engine: Engine, receiver: Receiver, tmp_path: Path
) -> None:
    """A dubbed file sends one 'done' message, HMAC-signed with the key from the file; it
    holds neither the API key nor the source's folder."""
    _webhook(engine, receiver, tmp_path)
    engine.put("clip.mp4")
    engine.run()
    engine.assert_all_done()
    wait_until(lambda: receiver.received, what="the done message")
    _, headers, body = receiver.received[0]
    expected = "sha256=" + hmac.new(KEY, body, hashlib.sha256).hexdigest()
    assert headers[SIGNATURE_HEADER] == expected
    event = json.loads(body)
    assert event["event"] == "done" and event["job"]["file"] == "clip.mp4"
    text = body.decode()
    assert engine.sim.api_key not in text and str(engine.input) not in text
    assert [e["event"] for e in receiver.events()] == ["done"]


def test_failed_job_is_sent_and_events_filter(
    engine: Engine, receiver: Receiver, tmp_path: Path
) -> None:
    """A file that is not a video sends 'failed'; an event left out of notify.events is not."""
    _webhook(engine, receiver, tmp_path, events=["failed"])
    (engine.input / "bad.mp4").write_bytes(b"this is not a video at all" * 100)
    engine.put("good.mp4")
    engine.run()
    wait_until(lambda: receiver.received, what="the failed message")
    events = receiver.events()
    assert [e["event"] for e in events] == ["failed"]
    assert events[0]["job"]["file"] == "bad.mp4" and "show" in events[0]["message"]


def test_a_hanging_receiver_never_holds_up_dubbing(
    engine: Engine, receiver: Receiver, tmp_path: Path
) -> None:
    """While the receiver hangs on the first message, the other files are still dubbed."""
    receiver.hang.set()
    _webhook(engine, receiver, tmp_path)
    for name in ("a.mp4", "b.mp4", "c.mp4"):
        engine.put(name)
    engine.run()
    engine.assert_all_done()
    assert receiver.blocked.is_set() and not receiver.release.is_set()


def test_retries_with_backoff_until_the_receiver_answers(receiver: Receiver) -> None:
    """Two 500s, then 200: the message arrives once, on the third attempt."""
    receiver.fail_first = 2
    notes = Notifications([WebhookSender(receiver.url, KEY)], ["done"], backoff=0.05)
    try:
        notes.emit(Message("done", "Dubbed: x.mp4", "job #1", 1.0))
        # The receiver records the message before its 200 reaches the sender, which counts
        # it only then: wait for the sender's count, not the receiver's record.
        wait_until(lambda: notes.channels[0].sent == 1, what="the retried message")
        assert len(receiver.received) == 1 and receiver.fail_first == 0
    finally:
        notes.close()


def test_a_dead_receiver_gives_up_and_logs(tmp_path: Path) -> None:
    """Nothing listening: the channel gives up after its attempts, counted as failed."""
    notes = Notifications(
        [WebhookSender("http://127.0.0.1:9/hook", None, timeout=1)],
        ["done"],
        attempts=2,
        backoff=0.01,
    )
    try:
        notes.emit(Message("done", "t", "b", 1.0))
        wait_until(lambda: notes.channels[0].failed == 1, what="giving up")
    finally:
        notes.close()


def test_apprise_url_reaches_the_receiver(receiver: Receiver) -> None:
    """An Apprise json:// URL delivers title and body to the loopback receiver."""
    from synthesia_watchd.engine.notify import AppriseSender

    url = receiver.url.replace("http://", "json://")
    notes = Notifications([AppriseSender([url])], ["failed"], backoff=0.05)
    try:
        notes.emit(Message("failed", "Failed: x.mp4", "job #3: not a video", 1.0))
        wait_until(lambda: receiver.received, what="the apprise message")
        sent = receiver.events()[0]
        assert sent["title"] == "Failed: x.mp4" and "not a video" in sent["message"]
    finally:
        notes.close()


def test_operator_pause_and_resume_are_sent(
    live_factory: Callable[..., LiveDaemon], receiver: Receiver
) -> None:
    """`pause` on a running daemon sends 'paused', `resume` sends 'resumed'."""
    live = live_factory(settings={"notify": {"webhook": {"url": receiver.url}}})
    lifecycle.pause(live.daemon.ledger)
    wait_until(lambda: [e["event"] for e in receiver.events()] == ["paused"], what="paused")
    assert receiver.events()[0]["reason"] == "operator"
    lifecycle.resume(live.daemon.ledger)
    wait_until(
        lambda: [e["event"] for e in receiver.events()] == ["paused", "resumed"], what="resumed"
    )


def test_notify_settings_apply_on_reload(
    live_factory: Callable[..., LiveDaemon], receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A webhook added to the config file and a SIGHUP: the next finished job is sent."""
    live = live_factory()
    monkeypatch.setenv("SYNTHESIA_API_KEY", live.engine.sim.api_key)  # a reload reads the env
    assert live.daemon.notifications is None
    live.engine.settings["notify"] = {"webhook": {"url": receiver.url}}
    live.engine.write_config(mode="polling", scan_interval=3600)
    live.reload()
    wait_until(lambda: live.daemon.notifications is not None, what="the reload")
    live.engine.put("after.mp4")
    assert live.post("/api/v1/jobs", json={"watch": "drop", "path": "after.mp4"}).status_code == 202
    wait_until(lambda: [e["event"] for e in receiver.events()] == ["done"], timeout=30, what="done")


def test_apprise_urls_are_masked_by_check_config(
    engine: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    """Apprise URLs carry tokens: check-config shows them as ***."""
    from synthesia_watchd.service import cli

    engine.settings = {"notify": {"apprise": ["tgram://123456:secret-bot-token/987"]}}
    assert cli.main(["check-config", "--offline", "-c", str(engine.write_config())]) == 0
    out = capsys.readouterr().out
    assert "secret-bot-token" not in out and "apprise:\n  - '***'" in out.replace('"', "'")
