# -*- coding: utf-8 -*-
# Copyright (c) edgex.sysmgmt contributors
# Apache License 2.0 (see LICENSE)
"""One HTTP GET on a connected socket, answered and closed, under one deadline.

What the ping probe and the docker executor's state reads need: a single request whose whole
exchange (send, every read) is bounded by one deadline, so that a server trickling bytes
cannot hold it. HTTP/1.0 with ``Connection: close``: the answer is never chunked and ends when
the server closes. The standard library's http.client would need its socket wrapped to keep
such a deadline, and importing it (with the email and ssl modules it pulls in) costs about
11 ms of every module run.
"""

from __future__ import annotations

import re
import socket
import time

MAX_HEAD = 64 * 1024
_STATUS_LINE = re.compile(rb"HTTP/1\.[01] ([0-9]{3})(?=[ \r\n]|$)")
_CONTENT_LENGTH = re.compile(rb"^content-length:[ \t]*([0-9]+)[ \t]*$", re.IGNORECASE | re.MULTILINE)


class AnswerError(Exception):
    """The peer closed without an answer, or what it sent is not an HTTP answer."""


def _arm(sock, deadline):
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise socket.timeout("deadline passed")
    sock.settimeout(remaining)


def http_get(sock, host, path, deadline, max_body, accept="application/json"):
    """(status, body) of ``GET path`` on the connected ``sock``; closes it.

    A body longer than ``max_body`` is cut to ``max_body + 1`` bytes, so the caller can tell.
    Raises socket.timeout when the deadline passes, OSError on I/O errors and AnswerError.
    """
    request = ("GET %s HTTP/1.0\r\nHost: %s\r\nAccept: %s\r\nConnection: close\r\n\r\n"
               % (path, host, accept)).encode("ascii")
    limit = MAX_HEAD + max_body + 1
    received = bytearray()
    try:
        _arm(sock, deadline)
        sock.sendall(request)
        while len(received) < limit:
            _arm(sock, deadline)
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
    length = _CONTENT_LENGTH.search(head)
    if length:
        if len(body) < min(int(length.group(1)), max_body + 1):
            raise AnswerError("connection closed in the middle of the answer")
        body = body[:int(length.group(1))]
    return int(status.group(1)), body[:max_body + 1]
