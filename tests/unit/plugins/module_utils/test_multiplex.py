"""_net.multiplex: many exchanges at once in one thread over real loopback sockets, each under its
own deadline. Peers that hang hold a connection for HANG_SECONDS; the bounds asserted here are a
fraction of that, so they prove a deadline stopped the exchange whatever the machine's load."""

import socket
import threading
import time

import pytest

from ansible_collections.edgex.sysmgmt.plugins.module_utils._net.multiplex import Exchange, Job, exchange_all

from ping_servers import HANG_SECONDS, RawPeers, free_port

LOCAL = [(socket.AF_INET, "127.0.0.1")]


@pytest.fixture
def peer():
    """Each connection handled in a thread of its own: hundreds are held at once."""
    with RawPeers(concurrent=True) as peers:
        yield peers


def echo_line(connection, peers):
    """Reads one line, answers it back upper-cased, closes."""
    line = b""
    while not line.endswith(b"\n"):
        chunk = connection.recv(1024)
        if not chunk:
            return
        line += chunk
    connection.sendall(line.upper())


def hang(connection, peers):
    """Reads what comes, never answers, until the client goes or the test ends."""
    connection.settimeout(HANG_SECONDS)
    while not peers.release.is_set() and connection.recv(1024):
        pass


def in_parts(parts, pause):
    """Answers a line with ``parts`` written ``pause`` seconds apart, then closes."""
    def handler(connection, peers):
        connection.recv(1024)
        for part in parts:
            if peers.release.wait(pause):
                return
            connection.sendall(part)
    return handler


def ready(exchange):
    return Job(lambda deadline: exchange, False)


def run(exchanges, max_in_flight=64, timeout=5.0):
    exchange_all([ready(e) for e in exchanges], max_in_flight, timeout)
    return exchanges


def test_an_answer_is_read_until_the_peer_closes(peer):
    (done,) = run([Exchange(LOCAL, peer(echo_line), b"ping\n")])
    assert (done.error, done.received) == (None, b"PING\n")
    assert done.started <= done.finished


def test_an_answer_is_complete_when_the_caller_says_so(peer):
    port = peer(in_parts([b"+PO", b"NG\r\n", b"never read"], 0.05))
    (done,) = run([Exchange(LOCAL, port, b"PING\r\n", complete=lambda got: b"\r\n" in got)])
    assert (done.error, done.received) == (None, b"+PONG\r\n")


def test_a_slow_answer_within_the_deadline_is_read_whole(peer):
    port = peer(in_parts([b"slow ", b"but ", b"in time\n"], 0.2))
    (done,) = run([Exchange(LOCAL, port, b"x\n")], timeout=30.0)
    assert (done.error, done.received) == (None, b"slow but in time\n")


def test_a_hung_peer_ends_at_the_deadline_and_keeps_what_it_sent(peer):
    started = time.monotonic()
    (done,) = run([Exchange(LOCAL, peer(hang), b"x\n")], timeout=0.5)
    assert time.monotonic() - started < HANG_SECONDS / 3  # stopped by the deadline, not by the peer
    assert isinstance(done.error, socket.timeout) and done.received == b""


def test_a_refused_connect_is_the_connect_error():
    (done,) = run([Exchange(LOCAL, free_port(), b"x\n")])
    assert isinstance(done.error, ConnectionRefusedError)


def test_the_next_address_is_tried_when_one_refuses(peer):
    port = peer(echo_line, address="127.0.0.1")
    (done,) = run([Exchange([(socket.AF_INET, "127.0.0.2"), (socket.AF_INET, "127.0.0.1")], port, b"two\n")])
    assert (done.error, done.received) == (None, b"TWO\n")


def test_a_connect_alone_is_an_exchange(peer):
    reached, refused = run([Exchange(LOCAL, peer(hang)), Exchange(LOCAL, free_port())])
    assert reached.error is None and isinstance(refused.error, ConnectionRefusedError)


def test_a_farewell_follows_a_whole_answer(peer):
    heard = []

    def handler(connection, peers):
        connection.recv(1024)
        connection.sendall(b"OK\n")
        heard.append(connection.recv(1024))

    (done,) = run([Exchange(LOCAL, peer(handler), b"hello\n", complete=lambda got: got.endswith(b"\n"),
                            farewell=lambda got: b"bye" if got == b"OK\n" else None)])
    assert done.error is None
    deadline = time.monotonic() + 10
    while not heard and time.monotonic() < deadline:
        time.sleep(0.01)
    assert heard == [b"bye"]


def test_a_limit_ends_the_read(peer):
    port = peer(in_parts([b"x" * 100], 0))
    (done,) = run([Exchange(LOCAL, port, b"x\n", limit=10)])
    assert (done.error, done.received) == (None, b"x" * 10)


def test_many_at_once_take_about_one_deadline_and_every_answer_is_its_own(peer):
    # 150 hung and 150 answering, all at once: the hung ones cost one deadline together, and every
    # answering one gets its own answer.
    hung_port, echo_port = peer(hang), peer(echo_line)
    hung = [Exchange(LOCAL, hung_port, b"x\n") for _index in range(150)]
    answering = [Exchange(LOCAL, echo_port, b"line %d\n" % index) for index in range(150)]
    started = time.monotonic()
    run([e for pair in zip(hung, answering) for e in pair], max_in_flight=300, timeout=1.0)
    assert time.monotonic() - started < HANG_SECONDS / 3  # not 150 deadlines one after the other
    assert all(isinstance(e.error, socket.timeout) for e in hung)
    assert [(e.error, e.received) for e in answering] == [(None, b"LINE %d\n" % index) for index in range(150)]


def test_a_blocking_start_runs_beside_the_others_and_keeps_its_deadline(peer):
    # The first job waits (as a name lookup would) until the peer has answered all the others: had
    # it held the loop, none of them would have started, and it would wait HANG_SECONDS.
    others_answered = threading.Event()
    answered = []

    def counting_echo(connection, peers):
        echo_line(connection, peers)
        answered.append(1)
        if len(answered) == 5:
            others_answered.set()

    port = peer(counting_echo)
    late = Exchange(LOCAL, port, b"late\n")
    others = [Exchange(LOCAL, port, b"other %d\n" % index) for index in range(5)]
    seen = {}

    def slow_start(deadline):
        seen["deadline"] = deadline
        others_answered.wait(HANG_SECONDS)
        return late

    started = time.monotonic()
    exchange_all([Job(slow_start, True)] + [ready(e) for e in others], 8, 20.0)
    assert time.monotonic() - started < HANG_SECONDS / 3
    assert [(o.error, o.received) for o in others] == [(None, b"OTHER %d\n" % index) for index in range(5)]
    assert (late.error, late.received, late.deadline) == (None, b"LATE\n", seen["deadline"])


def test_a_start_that_finds_nothing_to_exchange_ends_at_once():
    calls = []

    def start(deadline):
        calls.append(deadline)
        return None

    exchange_all([Job(start, False), Job(start, True), Job(start, True)], 2, 1.0)
    assert len(calls) == 3


def test_an_error_in_a_start_is_raised_after_closing_everything(peer):
    def broken(deadline):
        raise ValueError("a bug in a start")

    open_one = Exchange(LOCAL, peer(hang), b"x\n")
    with pytest.raises(ValueError, match="a bug in a start"):
        exchange_all([ready(open_one), Job(broken, True), Job(broken, False)], 4, 30.0)
    assert open_one._sock is None or open_one._sock.fileno() == -1
