"""_http.http_get over a socketpair: what is sent, how answers are read, and what is refused."""

import socket
import threading
import time

import pytest

from ansible_collections.edgex.sysmgmt.plugins.module_utils._net.http import AnswerError, http_get


def exchange(answer, max_body=1024, timeout=2.0, pause=None, times=None):
    """(status, body, request seen by the peer) of one http_get; the peer writes ``answer`` (bytes,
    or a list of byte strings with ``pause`` seconds between them) and closes. ``times``, a dict,
    gets when http_get ended ("ended") and, if the peer got to the end, when it had written all
    ("answered")."""
    ours, peer = socket.socketpair()
    seen = []
    times = {} if times is None else times

    def serve():
        seen.append(peer.recv(65536))
        for part in answer if isinstance(answer, list) else [answer]:
            try:
                peer.sendall(part)
            except OSError:
                break
            if pause:
                time.sleep(pause)
        else:
            times["answered"] = time.monotonic()
        peer.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        status, body = http_get(ours, "127.0.0.1:59880", "/api/v3/ping", time.monotonic() + timeout, max_body)
    finally:
        times["ended"] = time.monotonic()
        thread.join(5)
    return status, body, seen[0]


def test_sends_one_http10_get_that_asks_the_server_to_close():
    status, body, request = exchange(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
    assert (status, body) == (200, b"{}")
    assert request == (b"GET /api/v3/ping HTTP/1.0\r\nHost: 127.0.0.1:59880\r\nAccept: application/json\r\n"
                       b"Connection: close\r\n\r\n")


def test_without_content_length_the_body_ends_with_the_connection():
    assert exchange(b"HTTP/1.0 503 Service Unavailable\r\n\r\nnot yet")[:2] == (503, b"not yet")


def test_a_status_line_without_a_reason_phrase_is_an_answer():
    assert exchange(b"HTTP/1.1 204\r\n\r\n")[:2] == (204, b"")
    assert exchange(b"HTTP/1.1 200\r\nContent-Length: 2\r\n\r\n{}")[:2] == (200, b"{}")


def test_content_length_bounds_the_body():
    assert exchange(b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\nabcdef")[:2] == (200, b"abc")


def test_a_body_over_the_limit_is_cut_one_byte_past_it():
    assert exchange(b"HTTP/1.1 200 OK\r\n\r\n" + b"x" * 5000, max_body=100)[1] == b"x" * 101


@pytest.mark.parametrize("answer, reason", [
    (b"", "connection closed without an answer"),
    (b"SSH-2.0-OpenSSH_9.2\r\n", "not an HTTP answer"),
    (b"HTTP/1.1 200 OK\r\nContent-Type: application/json", "not an HTTP answer"),
    (b"HTTP/1.1 2000 OK\r\n\r\n", "not an HTTP answer"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n{}", "connection closed in the middle of the answer"),
])
def test_what_is_not_a_whole_http_answer_is_named(answer, reason):
    with pytest.raises(AnswerError, match=reason):
        exchange(answer)


def test_one_deadline_covers_every_read():
    # Each part comes well within the timeout; together they take far longer.
    parts = [b"HTTP/1.1 200 OK\r\n"] + [b"X-Slow: x\r\n"] * 20
    times = {}
    with pytest.raises(socket.timeout):
        exchange(parts, timeout=0.5, pause=0.1, times=times)
    # It gave up before the peer had written all (2 s of pauses): a timeout per read never would.
    assert times["ended"] < times.get("answered", float("inf"))
