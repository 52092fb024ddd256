"""HTTP plumbing the test-bed's registry emulators (Consul, core-keeper) share: routing, the
request line's path and query, the body, and the request counts the benchmarks read.

Standard library only (Python 3.9+): it ships in the stand-in image beside the emulators.
"""

import re
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler


class Routes(list):
    """(method, pattern, handler) in declaration order; ``route`` is the decorator that adds one."""

    def route(self, method, pattern):
        def wrap(fn):
            self.append((method, re.compile("^" + pattern + "$"), fn))
            return fn
        return wrap

    def find(self, method, path, head_as_get=False):
        """(handler, groups), or (None, whether another method serves ``path``: 405 vs 404)."""
        path_known = False
        for route_method, pattern, fn in self:
            found = pattern.match(path)
            if not found:
                continue
            path_known = True
            if route_method == method or (head_as_get and route_method == "GET" and method == "HEAD"):
                return fn, found.groups()
        return None, path_known


class RequestStats(object):
    """How many requests clients made, per path; the emulators' own /_emulator/ routes do not count."""

    def __init__(self):
        self.lock = threading.Lock()
        self.requests = 0
        self.by_path = {}

    def count(self, path):
        if path.startswith("/_emulator/"):
            return
        with self.lock:
            self.requests += 1
            self.by_path[path] = self.by_path.get(path, 0) + 1

    def snapshot(self):
        with self.lock:
            return {"requests": self.requests, "by_path": dict(self.by_path)}

    def reset(self):
        with self.lock:
            self.requests = 0
            self.by_path = {}


class EmulatorHandler(BaseHTTPRequestHandler):
    """Keep-alive HTTP/1.1, quiet, with the path and query split as the Go servers do."""

    protocol_version = "HTTP/1.1"
    # Keep-alive clients (python-consul2's requests session) would wait ~40 ms per answer
    # for the delayed ACK if small writes were held back (Nagle).
    disable_nagle_algorithm = True

    def log_message(self, fmt, *args):
        return

    def _query(self):
        parsed = urllib.parse.urlsplit(self.path)
        self.route_path = urllib.parse.unquote(parsed.path)
        self.q = {}
        for key, value in urllib.parse.parse_qsl(parsed.query, keep_blank_values=True):
            self.q.setdefault(key, value)  # Go's Query().Get: the first value

    def _body(self):
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""
