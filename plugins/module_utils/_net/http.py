# -*- coding: utf-8 -*-
# Copyright (c) edgex.sysmgmt contributors
# Apache License 2.0 (see LICENSE)
"""One HTTP exchange on a connected socket, answered and closed, under one deadline.

What the ping probe, the docker executor's state reads and the registry clients need: a single
request whose whole exchange (send, every read) is bounded by one deadline, so that a server
trickling bytes cannot hold it. HTTP/1.0 with ``Connection: close``: the answer ends when the
server closes (a chunked answer, which an HTTP/1.0 client should never get, is still decoded).
The standard library's http.client would need its socket wrapped to keep such a deadline, and
importing it (with the email and ssl modules it pulls in) costs about 11 ms of every module run.
"""

from __future__ import annotations

import re

from .dial import arm

MAX_HEAD = 64 * 1024
_STATUS_LINE = re.compile(rb"HTTP/1\.[01] ([0-9]{3})(?=[ \r\n]|$)")
_HEADER = re.compile(rb"^([!#$%&'*+.^_`|~0-9A-Za-z-]+):[ \t]*(.*?)[ \t]*$")


class AnswerError(Exception):
    """The peer closed without an answer, or what it sent is not an HTTP answer."""


def build_request(method, host, target, headers=None, body=None):
    """The bytes of one HTTP/1.0 request; ``target`` is the path with its query, already encoded."""
    lines = ["%s %s HTTP/1.0" % (method, target), "Host: %s" % host]
    for name, value in (headers or {}).items():
        if "\r" in value or "\n" in value:
            raise ValueError("header %s holds a line break" % name)
        lines.append("%s: %s" % (name, value))
    if body is not None:
        lines.append("Content-Length: %d" % len(body))
    lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b"")


def http_exchange(sock, request, deadline, max_body):
    """(status, headers, body) of ``request`` (bytes) sent on the connected ``sock``; closes it.

    ``headers`` maps lower-case names to values (the last one of a repeated header). A body
    longer than ``max_body`` is cut to ``max_body + 1`` bytes, so the caller can tell.
    Raises socket.timeout when the deadline passes, OSError on I/O errors and AnswerError.
    """
    limit = MAX_HEAD + max_body + 1
    received = bytearray()
    try:
        arm(sock, deadline)
        sock.sendall(request)
        while len(received) < limit:
            arm(sock, deadline)
            data = sock.recv(min(65536, limit - len(received)))
            if not data:
                break
            received += data
    finally:
        sock.close()
    if not received:
        raise AnswerError("connection closed without an answer")
    head, separator, body = bytes(received).partition(b"\r\n\r\n")
    status = _STATUS_LINE.match(head)
    if not status or not separator:
        raise AnswerError("not an HTTP answer")
    headers = {}
    for line in head.split(b"\r\n")[1:]:
        field = _HEADER.match(line)
        if not field:
            raise AnswerError("not an HTTP answer (a header line is malformed)")
        headers[field.group(1).decode("latin-1").lower()] = field.group(2).decode("latin-1")
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = _dechunk(body, max_body)
    elif "content-length" in headers:
        if not headers["content-length"].isdigit():
            raise AnswerError("not an HTTP answer (Content-Length %r)" % headers["content-length"][:20])
        length = int(headers["content-length"])
        if len(body) < min(length, max_body + 1):
            raise AnswerError("connection closed in the middle of the answer")
        body = body[:length]
    return int(status.group(1)), headers, body[:max_body + 1]


def _dechunk(data, max_body):
    body = bytearray()
    while True:
        size_line, separator, rest = data.partition(b"\r\n")
        try:
            size = int(size_line.split(b";")[0].strip(), 16)
        except ValueError:
            raise AnswerError("not an HTTP answer (a chunk size is malformed)")
        if not separator or len(rest) < size:
            raise AnswerError("connection closed in the middle of the answer")
        if size == 0 or len(body) > max_body:
            return bytes(body)
        body += rest[:size]
        data = rest[size + 2:]


def http_get(sock, host, path, deadline, max_body, accept="application/json"):
    """(status, body) of ``GET path`` on the connected ``sock``; closes it (see http_exchange)."""
    status, _headers, body = http_exchange(sock, build_request("GET", host, path, {"Accept": accept}), deadline,
                                           max_body)
    return status, body
