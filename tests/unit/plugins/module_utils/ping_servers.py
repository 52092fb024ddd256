"""Tiny in-process EdgeX ping servers for the probe and health tests: ``serve(behaviour)`` (a
fixture, in conftest.py) answers ok, 500, a wrong serviceName, garbage, or hangs or trickles."""

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PING = "/api/v3/ping"


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RawPeers(object):
    """Raw TCP listeners for tests that speak bytes, not HTTP. ``peers(handler)`` -> the port of a
    new listener that runs ``handler(connection, peers)`` for each connection: each in a thread of
    its own with ``concurrent`` (hundreds held at once), else one after the other (so that
    ``received``, where handlers put what they read, is in arrival order). ``handled`` is released
    after each connection; ``release`` is set on close, to end handlers that hang."""

    def __init__(self, concurrent=False, timeout=None):
        self.concurrent, self.timeout = concurrent, timeout
        self.listeners, self.received = [], []
        self.handled, self.release = threading.Semaphore(0), threading.Event()

    def __call__(self, handler, address="127.0.0.1"):
        listener = socket.socket()
        listener.bind((address, 0))
        listener.listen(512)
        self.listeners.append(listener)
        threading.Thread(target=self._serve, args=(listener, handler), daemon=True).start()
        return listener.getsockname()[1]

    def _serve(self, listener, handler):
        while True:
            try:
                connection, _address = listener.accept()
            except OSError:
                return
            if self.concurrent:
                threading.Thread(target=self._handle, args=(connection, handler), daemon=True).start()
            else:
                self._handle(connection, handler)

    def _handle(self, connection, handler):
        with connection:
            connection.settimeout(self.timeout)
            try:
                handler(connection, self)
            except OSError:
                pass
        self.handled.release()

    def __enter__(self):
        return self

    def __exit__(self, *_exc):
        self.release.set()
        for listener in self.listeners:
            listener.close()


class Server(ThreadingHTTPServer):
    daemon_threads = True


# How long a hung server holds a request, and how long a trickling one takes to answer in full: a
# probe that its deadline did not stop would take that long, so bounds well under these prove it
# was stopped, whatever the machine's load.
HANG_SECONDS = 30
TRICKLE_SECONDS = 0.1 * 150


def make_handler(behaviour, service_name, release):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *args):
            return

        def _send(self, status, body):
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):  # noqa: N802
            if self.path != PING:
                self._send(404, b"{}")
            elif behaviour == "ok":
                self._send(200, json.dumps({"apiVersion": "v3", "timestamp": "Mon Nov 24 21:13:43 UTC 2026",
                                            "serviceName": service_name}).encode())
            elif behaviour == "500":
                self._send(500, b'{"apiVersion":"v3","statusCode":500,"message":"boom"}')
            elif behaviour == "wrong-name":
                self._send(200, b'{"apiVersion":"v3","timestamp":"x","serviceName":"core-metadata"}')
            elif behaviour == "garbage":
                self._send(200, b"<html>not json</html>")
            elif behaviour == "hang":
                release.wait(HANG_SECONDS)
            elif behaviour == "trickle":
                # Headers one byte at a time: each read is quick, the whole answer is not.
                for byte in b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Slow: " + b"x" * 100:
                    if release.wait(0.1):
                        return
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()

    return Handler


def serve_factory():
    """Factory: serve(behaviour, service_name="core-data", port=None) -> port of a running server."""
    servers = []
    release = threading.Event()

    def start(behaviour, service_name="core-data", port=None):
        server = Server(("127.0.0.1", port or 0), make_handler(behaviour, service_name, release))
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        servers.append(server)
        return server.server_address[1]

    def stop():
        release.set()
        for server in servers:
            server.shutdown()
            server.server_close()

    return start, stop
