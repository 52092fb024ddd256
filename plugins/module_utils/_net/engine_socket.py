# -*- coding: utf-8 -*-
# Copyright (c) edgex.sysmgmt contributors
# Apache License 2.0 (see LICENSE)
"""Read-only Docker Engine API calls over the engine's local unix socket, with the standard library.

The docker executor reads container state on every run, most often to find that nothing has
to change. Through the Docker SDK that costs importing it with requests and urllib3 (about
60 ms, more than the rest of the module) and a version round trip; here it costs one connect
per request. Everything that changes a container still goes through the SDK.
"""

from __future__ import annotations

import socket
import time

from .dial import arm
from .http import AnswerError, http_get

UNIX_SCHEME = "unix://"
# A container inspect is a few kB; this bounds a misbehaving peer, not a real answer.
MAX_ANSWER = 16 * 1024 * 1024


def local_socket_path(base_url):
    """The socket path of a ``unix://`` engine address, else None (tcp://, ssh://: SDK only)."""
    if base_url and base_url.startswith(UNIX_SCHEME):
        return base_url[len(UNIX_SCHEME):] or None
    return None


class EngineSocketError(Exception):
    """The engine did not answer (no socket, refused, permission, time-out, not HTTP)."""


class EngineSocket(object):
    """GET requests to the Engine API at ``path`` (unversioned URLs: the engine's own API version).

    ``timeout`` is each request's total deadline: connect, send and the whole answer."""

    def __init__(self, path, timeout):
        self.path = path
        self.timeout = timeout

    def get(self, url):
        """(HTTP status, body bytes); raises EngineSocketError when nobody answers in time."""
        deadline = time.monotonic() + self.timeout
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            arm(sock, deadline)
            sock.connect(self.path)
            return http_get(sock, "docker", url, deadline, MAX_ANSWER)
        except socket.timeout:
            raise EngineSocketError("no answer within %ss" % self.timeout) from None
        except (OSError, AnswerError) as exc:
            raise EngineSocketError(getattr(exc, "strerror", None) or str(exc) or type(exc).__name__) from None
        finally:
            sock.close()
