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
