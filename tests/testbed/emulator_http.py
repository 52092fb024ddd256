"""HTTP plumbing the test-bed's registry emulators (Consul, core-keeper) share: routing, the
request line's path and query, the body, the request counts the benchmarks read, fault rules
chosen per endpoint at run time, and HTTPS.

Standard library only (Python 3.9+): it ships in the stand-in image beside the emulators.
"""

import email.utils
import json
import re
import select
import socket
import ssl
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# What a fault rule may do to an answer. The first group replaces the answer (its text is the
# emulator's: Consul and keeper word a 404 or a 500 differently); the second sends the real
# answer, damaged; "hang" reads the request and never answers.
REPLACING_MODES = ("404", "500", "html", "garbage")
DAMAGING_MODES = ("slow", "truncated", "disconnect", "trickle-status", "trickle-body")
FAULT_MODES = REPLACING_MODES + DAMAGING_MODES + ("hang",)
# A hung answer is abandoned after this long even if the client never goes away.
HANG_LIMIT = 3600.0


class Routes(list):
    """(method, pattern, handler) in declaration order; ``route`` is the decorator that adds one."""

    def route(self, method, pattern):
        def wrap(fn):
            self.append((method, re.compile("^" + pattern + "$", re.DOTALL), fn))
            return fn
        return wrap

    def find(self, method, path, head_as_get=False):
        """(handler, groups), or (None, the methods that serve ``path``: 405 vs 404)."""
        methods = []
        for route_method, pattern, fn in self:
            found = pattern.match(path)
            if not found:
                continue
            if route_method == method or (head_as_get and route_method == "GET" and method == "HEAD"):
                return fn, found.groups()
            if route_method not in methods:
                methods.append(route_method)
        return None, methods


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


class FaultError(ValueError):
    """A fault rule the control API refuses."""


class FaultRules(object):
    """One global fault (the emulators' original knob) plus rules per endpoint.

    A rule: {"mode", "path": regex searched in the decoded path, "method", "delay" (s, for
    slow), "rate" (bytes/s, for trickle), "status" (for html), "times" (answers it damages,
    then it is gone), "datacenter" (Consul only)}. Rules are tried newest first; the global
    fault applies only where no rule matches and only to the emulator's API paths.
    """

    def __init__(self):
        self.lock = threading.Lock()
        self.global_fault = {"mode": None, "delay": 0.0, "datacenter": None}
        self.rules = []

    @staticmethod
    def _rule(body):
        mode = body.get("mode") or None
        if mode is not None and mode not in FAULT_MODES:
            raise FaultError("unknown fault mode %r (one of %s, or null)" % (mode, ", ".join(FAULT_MODES)))
        path = body.get("path")
        if path is not None:
            try:
                re.compile(path)
            except re.error as exc:
                raise FaultError("path is not a regular expression: %s" % exc)
        times = body.get("times")
        rate = float(body["rate"]) if body.get("rate") is not None else 1.0
        if rate <= 0:
            raise FaultError("rate must be > 0 bytes/s")
        return {"mode": mode, "path": path, "method": (body.get("method") or "").upper() or None,
                "delay": float(body.get("delay") or 0), "rate": rate,
                "status": int(body.get("status") or 200), "times": int(times) if times is not None else None,
                "datacenter": body.get("datacenter")}

    def configure(self, body):
        """The control API: a rule for ``path``, the global fault without it; mode null clears
        that rule, or (without path) the global fault and every rule."""
        rule = self._rule(body)
        with self.lock:
            if rule["path"] is None:
                self.global_fault = {"mode": rule["mode"], "delay": rule["delay"], "datacenter": rule["datacenter"],
                                     "rate": rule["rate"], "status": rule["status"]}
                if rule["mode"] is None:
                    self.rules = []
            else:
                self.rules = [r for r in self.rules if (r["path"], r["method"]) != (rule["path"], rule["method"])]
                if rule["mode"] is not None:
                    self.rules.insert(0, rule)
            return self.snapshot_locked()

    def snapshot_locked(self):
        state = dict(self.global_fault)
        state["rules"] = [dict(r) for r in self.rules]
        return state

    def snapshot(self):
        with self.lock:
            return self.snapshot_locked()

    def find(self, method, path, api_path, datacenter=None):
        """The rule (or global fault) for this request, counting it as used; None when healthy."""
        if path.startswith("/_emulator/"):
            return None
        with self.lock:
            for rule in self.rules:
                if rule["method"] and rule["method"] != method:
                    continue
                if rule["datacenter"] and rule["datacenter"] != datacenter:
                    continue
                if not re.search(rule["path"], path):
                    continue
                if rule["times"] is not None:
                    rule["times"] -= 1
                    if rule["times"] <= 0:
                        self.rules.remove(rule)
                return dict(rule)
            fault = self.global_fault
            if not fault["mode"] or not api_path:
                return None
            if fault["datacenter"] and fault["datacenter"] != datacenter:
                return None
            return dict(fault)


def go_json(payload, sort_keys=False, indent=None):
    """encoding/json output: compact, UTF-8 as is, HTML characters escaped (json.Marshal sorts
    map keys, which callers ask for with sort_keys)."""
    text = json.dumps(payload, separators=(",", ":") if indent is None else (",", ": "), ensure_ascii=False,
                      sort_keys=sort_keys, indent=indent)
    for char, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"),
                          ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(char, escaped)
    return text


def http_date():
    return email.utils.formatdate(usegmt=True)


class EmulatorHandler(BaseHTTPRequestHandler):
    """Keep-alive HTTP/1.1, quiet, with the path and query split as the Go servers do, and
    answers written whole by ``respond`` so that a fault rule can damage them on the wire."""

    protocol_version = "HTTP/1.1"
    # Keep-alive clients (python-consul2's requests session) would wait ~40 ms per answer
    # for the delayed ACK if small writes were held back (Nagle).
    disable_nagle_algorithm = True
    fault = None

    def log_message(self, fmt, *args):
        return

    def send_response(self, code, message=None):
        # Go's net/http sends a Date header and no Server header; neither do Consul nor keeper.
        self.log_request(code)
        self.send_response_only(code, message)
        self.send_header("Date", http_date())

    def _query(self):
        """Split the request line and read the body (a keep-alive connection must not be left
        with an unread body, whatever the answer)."""
        self.fault = None
        self._body_read = None
        self._body()
        parsed = urllib.parse.urlsplit(self.path)
        self.raw_path = parsed.path
        self.route_path = urllib.parse.unquote(parsed.path)
        self.q = {}
        self.q_all = {}
        for key, value in urllib.parse.parse_qsl(parsed.query, keep_blank_values=True):
            self.q.setdefault(key, value)  # Go's Query().Get: the first value
            self.q_all.setdefault(key, []).append(value)

    def _body(self):
        if getattr(self, "_body_read", None) is not None:
            return self._body_read
        length = int(self.headers.get("Content-Length") or 0)
        self._body_read = self.rfile.read(length) if length else b""
        return self._body_read

    # -- answers ---------------------------------------------------------------
    def _head(self, status, headers, length):
        reason = self.responses.get(status, ("",))[0]
        lines = ["%s %d %s" % (self.protocol_version, status, reason), "Date: %s" % http_date()]
        lines += ["%s: %s" % (name, value) for name, value in headers]
        if length is not None:
            lines.append("Content-Length: %d" % length)
        if self.close_connection:
            lines.append("Connection: close")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    def respond(self, status, headers, body=b""):
        """Write one answer (headers: (name, value) pairs), damaged as the request's fault says."""
        self.log_request(status)
        no_body = status in (204, 304) or 100 <= status < 200
        if no_body:
            body = b""
        mode = self.fault["mode"] if self.fault else None
        if mode == "truncated" and len(body) > 1:
            body = body[:len(body) // 2]  # whole HTTP message, broken JSON
        head = self._head(status, headers, None if no_body else len(body))
        if self.command == "HEAD":
            body = b""
        try:
            if mode == "disconnect":
                # The headers promise the whole body; the connection ends halfway through it.
                self.wfile.write(head + body[:len(body) // 2])
                self.wfile.flush()
                self.close_connection = True
                try:
                    self.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            elif mode == "trickle-status":
                self._trickle(head + body, self.fault["rate"])
            elif mode == "trickle-body":
                self.wfile.write(head)
                self.wfile.flush()
                self._trickle(body, self.fault["rate"])
            else:
                self.wfile.write(head + body)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, OSError):
            self.close_connection = True

    def respond_html_page(self, status):
        """What a proxy or portal in front of the registry answers: an HTML page."""
        reason = self.responses.get(status, ("",))[0]
        page = ("<html>\r\n<head><title>%d %s</title></head>\r\n<body>\r\n<center><h1>%d %s</h1></center>\r\n"
                "<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n" % (status, reason, status, reason))
        self.respond(status, [("Content-Type", "text/html")], page.encode())

    def _trickle(self, data, rate):
        """Send ``data`` at ``rate`` bytes per second (a peer that is slow, not dead)."""
        step = max(1, int(rate / 50))  # at most ~50 writes a second
        pause = step / rate
        for start in range(0, len(data), step):
            self.wfile.write(data[start:start + step])
            self.wfile.flush()
            if start + step < len(data):
                time.sleep(pause)

    def hang(self):
        """Accept and never answer: wait until the client goes away (or HANG_LIMIT passes)."""
        self.close_connection = True
        deadline = time.time() + HANG_LIMIT
        connection = self.connection
        while time.time() < deadline:
            try:
                readable, _w, _x = select.select([connection], [], [], 1.0)
                if readable and not connection.recv(4096):
                    return
            except (OSError, ValueError, ssl.SSLError):
                return


class Server(ThreadingHTTPServer):
    """A threading HTTP server; with ``tls_context`` each connection is HTTPS, its handshake
    done in the connection's own thread so that a client that never speaks TLS cannot stall
    the others."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128
    tls_context = None
    TLS_HANDSHAKE_TIMEOUT = 10.0

    def finish_request(self, request, client_address):
        if self.tls_context is None:
            return ThreadingHTTPServer.finish_request(self, request, client_address)
        try:
            request.settimeout(self.TLS_HANDSHAKE_TIMEOUT)
            wrapped = self.tls_context.wrap_socket(request, server_side=True)
            wrapped.settimeout(None)
        except (ssl.SSLError, OSError):
            return
        try:
            ThreadingHTTPServer.finish_request(self, wrapped, client_address)
        finally:
            try:
                wrapped.close()
            except OSError:
                pass


def tls_server_context(cert_file, key_file):
    """The server side of HTTPS with this certificate chain and key (no client certificates)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    return context
