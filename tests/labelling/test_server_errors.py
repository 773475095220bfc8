"""label push/pull against a server that does not answer or refuses the token."""

from __future__ import annotations

import http.server
import socket
import threading
import time

import pytest

from landforge.cli import main

pytest.importorskip("label_studio_sdk")


@pytest.fixture
def refusing_server():
    """An HTTP server answering 401 to everything (a Label Studio refusing the token)."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def _deny(self):
            body = b'{"detail": "Invalid token."}'
            self.send_response(401)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = _deny

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def silent_server():
    """A socket that accepts connections and never answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    sock.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run(args, capsys):
    code = main(args)
    return code, capsys.readouterr().err.strip().splitlines()


def test_refused_token_is_one_line(exported, refusing_server, capsys, monkeypatch) -> None:
    monkeypatch.setenv("LABEL_STUDIO_TOKEN", "not-a-valid-token")
    code, err = _run(["label", "push", str(exported), "--url", refusing_server], capsys)
    assert code == 2 and len(err) == 1, err
    assert err[0].startswith("error: $LABEL_STUDIO_TOKEN: ") and "refused the token" in err[0]
    assert "not-a-valid-token" not in err[0]


def test_silent_server_times_out_quickly(tmp_path, silent_server, capsys, monkeypatch) -> None:
    monkeypatch.setenv("LABEL_STUDIO_TOKEN", "abc")
    out = tmp_path / "a.json"
    start = time.monotonic()
    code, err = _run(["label", "pull", "--url", silent_server, "--timeout", "1",
                      "--out", str(out)], capsys)  # fmt: skip
    assert time.monotonic() - start < 20
    assert code == 2 and len(err) == 1, err
    assert err[0].startswith(f"error: {silent_server}: ") and "did not answer within 1 s" in err[0]
    assert not out.exists()


def test_nothing_listening(exported, capsys, monkeypatch) -> None:
    monkeypatch.setenv("LABEL_STUDIO_TOKEN", "abc")
    url = f"http://127.0.0.1:{_free_port()}"
    code, err = _run(["label", "push", str(exported), "--url", url, "--timeout", "2"], capsys)
    assert code == 2 and len(err) == 1 and "did not answer" in err[0], err


def test_token_never_from_the_command_line(exported, capsys, monkeypatch) -> None:
    monkeypatch.delenv("LABEL_STUDIO_TOKEN", raising=False)
    code, err = _run(["label", "push", str(exported)], capsys)
    assert code == 2 and len(err) == 1 and "$LABEL_STUDIO_TOKEN" in err[0], err
    code, err = _run(["label", "push", str(exported), "--token", "abc"], capsys)
    assert code == 2 and "--token" in err[0]


def test_token_file(tmp_path, exported, refusing_server, capsys) -> None:
    token = tmp_path / "token"
    token.write_text("secret\n")
    code, err = _run(["label", "push", str(exported), "--url", refusing_server,
                      "--token-file", str(token)], capsys)  # fmt: skip
    assert code == 2 and err[0].startswith(f"error: {token}: ") and "refused" in err[0]
    code, err = _run(["label", "push", str(exported), "--token-file", str(tmp_path / "no")], capsys)
    assert code == 2 and "--token-file" in err[0] and "does not exist" in err[0]
