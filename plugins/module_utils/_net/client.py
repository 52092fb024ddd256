# -*- coding: utf-8 -*-
# Copyright (c) edgex.sysmgmt contributors
# Apache License 2.0 (see LICENSE)
"""Requests to a registry's HTTP API under one total deadline.

One deadline covers the name lookup, the connect, the TLS handshake, the request and the
whole answer (status line, headers, body), so a registry that trickles its answer, or a
resolver that hangs, costs at most ``timeout``. Failures are told apart, because what the
caller may do about them differs: ``Unreachable`` (nobody answered in time: a fallback to
the manifest is allowed), ``TLSFailure`` (somebody answered but could not prove who it is:
as serious as a wrong token) and ``NotHTTP``.
"""

from __future__ import annotations

import os
import socket
import time
from collections import namedtuple
from urllib.parse import quote, urlencode

from .dial import RESOLVER, NameNotFound, ResolveTimeout, connect
from .http import AnswerError, build_request, http_exchange

# A registry's answers are JSON documents; 64 MiB bounds a misbehaving peer, not a real fleet.
MAX_ANSWER = 64 * 1024 * 1024

Response = namedtuple("Response", "status headers body")


class HTTPFailure(Exception):
    """No usable answer; the message says why, never the token."""


class Unreachable(HTTPFailure):
    """Nothing answered within the deadline: refused, reset, timed out, name not resolved."""


class TLSFailure(HTTPFailure):
    """The peer answered but its certificate could not be verified (or our own could not be loaded)."""


class NotHTTP(HTTPFailure):
    """The peer answered with something that is not a whole HTTP answer."""


def path_segment(value):
    """``value`` as one URL path segment: every character outside unreserved ones is escaped,
    so a name like ``../x`` or ``a?b`` can never change the path or add a query."""
    return quote(value, safe="")


def target(path, query=None):
    """The request target: ``path`` (whose segments the caller escaped) and its query."""
    return path + ("?" + urlencode(query) if query else "")


def tls_context(settings):
    """The client TLS context of resolved registry settings (validate_certs, ca_path, client_cert,
    client_key); raises TLSFailure saying what could not be loaded."""
    import ssl  # here, not at the top: ssl costs ~12 ms of every module run that never uses https

    try:
        if not settings.get("validate_certs", True):
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        else:
            ca_path = settings.get("ca_path") or None
            if ca_path and os.path.isdir(ca_path):
                context = ssl.create_default_context(capath=ca_path)
            else:
                context = ssl.create_default_context(cafile=ca_path)
        if settings.get("client_cert"):
            context.load_cert_chain(settings["client_cert"], settings.get("client_key") or None)
    except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
        raise TLSFailure("(ca_path, client_cert, client_key): %s" % (getattr(exc, "strerror", None) or exc))
    return context


def _connect(host, port, deadline):
    """A socket connected to ``host``, name lookup included, before ``deadline``."""
    try:
        addresses = RESOLVER.addresses(host, deadline)
    except ResolveTimeout:
        raise socket.timeout("no address for %s within the deadline" % host)
    except NameNotFound as exc:
        raise socket.gaierror(str(exc))
    return connect(addresses, port, deadline)


def request(method, scheme, host, port, path, query=None, headers=None, body=None, timeout=5.0, tls=None,
            max_answer=MAX_ANSWER):
    """Response of one request; raises Unreachable (its message: the failure's class, such as
    ConnectionRefusedError or TimeoutError), TLSFailure or NotHTTP.

    ``path``: the URL path with its segments already escaped (see ``path_segment``); ``tls``: the
    context for ``https`` (see ``tls_context``); ``timeout``: the total deadline in seconds.
    """
    deadline = time.monotonic() + timeout
    host_header = "[%s]:%s" % (host, port) if ":" in host else "%s:%s" % (host, port)
    try:
        sock = _connect(host, port, deadline)
        if scheme == "https":
            sock = tls.wrap_socket(sock, server_hostname=host, do_handshake_on_connect=False)
            sock.settimeout(max(0.001, deadline - time.monotonic()))
            sock.do_handshake()
        return Response(*http_exchange(sock, build_request(method, host_header, target(path, query), headers, body),
                                       deadline, max_answer))
    except AnswerError as exc:
        raise NotHTTP(str(exc))
    except OSError as exc:
        raise failure(exc, scheme)


def failure(exc, scheme):
    """The HTTPFailure an OSError of a request (over ``scheme``) stands for."""
    if scheme == "https":
        import ssl

        if isinstance(exc, ssl.SSLError):  # certificate checks first: they are SSLErrors too
            verify = getattr(exc, "verify_message", None)
            return TLSFailure("TLS handshake failed: %s" % (verify or getattr(exc, "reason", None) or exc))
    # The class of the failure says it best: ConnectionRefusedError, TimeoutError (nothing, or not the
    # whole answer, within the deadline), gaierror (the name does not resolve), ...
    return Unreachable(type(exc).__name__)
