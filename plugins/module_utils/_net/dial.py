# -*- coding: utf-8 -*-
# Copyright (c) edgex.sysmgmt contributors
# Apache License 2.0 (see LICENSE)
"""Name lookups, connects and short exchanges that keep a caller's deadline.

``getaddrinfo`` cannot be interrupted, and with a DNS server that does not answer it blocks for
its own timeouts (5 s x 2 attempts by default in glibc), whatever deadline the caller has. So
lookups run in a few daemon threads and a caller waits for the answer only until its deadline:
a lookup that overruns is the caller's failure, never its wait. Threads stuck in a hung lookup
are bounded (``max_threads``); one lookup per name is in flight however many callers ask for it,
and its answer is kept a short while for the callers that come next.
"""

from __future__ import annotations

import ipaddress
import queue
import socket
import threading
import time

# How long an answer (an address list or "does not resolve") is reused: a run asks for the same
# container names once per gateway, a wait_for loop again every few seconds.
ANSWER_TTL = 30.0


class NameNotFound(Exception):
    """The name does not resolve on this host (the resolver answered, or failed, in time)."""

    def __init__(self, name, cause):
        super(NameNotFound, self).__init__("%s does not resolve (%s)" % (name, cause))
        self.name = name
        self.cause = cause


class ResolveTimeout(Exception):
    """No answer for the name before the caller's deadline."""

    def __init__(self, name):
        super(ResolveTimeout, self).__init__("no answer for %s before the deadline" % name)
        self.name = name


def ip_literal(address):
    """``address`` as an IP address string when it is one (IPv6 without brackets, zone kept), else None."""
    if not address:
        return None
    candidate = address[1:-1] if address.startswith("[") and address.endswith("]") else address
    try:
        ipaddress.ip_address(candidate.split("%", 1)[0])
    except ValueError:
        return None
    return candidate


def _family(ip):
    return socket.AF_INET6 if ":" in ip else socket.AF_INET


class _Answer(object):
    def __init__(self):
        self.wanted_until = 0.0  # the latest deadline of a caller waiting for it
        self.done = threading.Event()
        self.addresses = None  # [(family, ip)] once resolved
        self.error = None  # the lookup's gaierror/OSError once it failed
        self.finished_at = None


class Resolver(object):
    """``addresses(name, deadline)``: the name's [(family, ip)], from ``lookup`` (getaddrinfo) run
    in at most ``max_threads`` daemon threads."""

    def __init__(self, lookup=None, max_threads=8, clock=time.monotonic):
        self.lookup = lookup  # None: socket.getaddrinfo, looked up at each call
        self.max_threads = max_threads
        self.clock = clock
        self._answers = {}
        self._pending = queue.Queue()
        self._threads = 0
        self._lock = threading.Lock()

    def addresses(self, name, deadline):
        """[(family, ip)] of ``name`` (an IP literal needs no lookup); raises NameNotFound when it
        does not resolve, ResolveTimeout when no answer came before ``deadline`` (clock seconds)."""
        literal = ip_literal(name)
        if literal is not None:
            return [(_family(literal), literal)]
        answer = self._answer(name, deadline)
        if not answer.done.wait(max(0.0, deadline - self.clock())):
            raise ResolveTimeout(name)
        if answer.error is not None:
            raise NameNotFound(name, getattr(answer.error, "strerror", None) or answer.error)
        return list(answer.addresses)

    def _answer(self, name, deadline):
        with self._lock:
            answer = self._answers.get(name)
            if answer is not None and not (answer.done.is_set() and self.clock() - answer.finished_at > ANSWER_TTL):
                answer.wanted_until = max(answer.wanted_until, deadline)
                return answer
            answer = self._answers[name] = _Answer()
            answer.wanted_until = deadline
            self._pending.put((name, answer))
            if self._threads < self.max_threads:
                self._threads += 1
                threading.Thread(target=self._work, name="edgex-resolve", daemon=True).start()
            return answer

    def _work(self):
        # Daemon: a lookup stuck in getaddrinfo never keeps the module's process from exiting.
        while True:
            name, answer = self._pending.get()
            with self._lock:  # the lock a caller holds when it starts waiting for this answer
                abandoned = self.clock() > answer.wanted_until
                if abandoned and self._answers.get(name) is answer:
                    # Everyone who asked has given up (the threads were stuck in hung lookups):
                    # forget it; whoever asks next starts a fresh lookup.
                    del self._answers[name]
            if abandoned:
                continue
            try:
                infos = (self.lookup or socket.getaddrinfo)(name, None, 0, socket.SOCK_STREAM)
                answer.addresses = list(dict.fromkeys((info[0], info[4][0]) for info in infos
                                                      if info[0] in (socket.AF_INET, socket.AF_INET6)))
                if not answer.addresses:
                    answer.error = OSError("no IPv4 or IPv6 address")
            except Exception as exc:  # noqa: BLE001 - gaierror, UnicodeError (a label too long), ...: a
                answer.error = exc  # failed lookup is the caller's answer, and this thread must live on
            answer.finished_at = self.clock()
            answer.done.set()


# The one resolver of a process: probes and registry calls share its threads and its answers.
RESOLVER = Resolver()


def connect(addresses, port, deadline):
    """A socket connected to the first of ``addresses`` ([(family, ip)]) that accepts on ``port``
    before ``deadline``; raises socket.timeout at the deadline, else the last connect's OSError."""
    last_error = OSError("no address to connect to")
    for family, ip in addresses:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise socket.timeout("deadline passed")
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.settimeout(remaining)
            sock.connect((ip, port))
            return sock
        except socket.timeout:
            sock.close()
            raise
        except OSError as exc:
            sock.close()
            last_error = exc
    raise last_error


def exchange(sock, payload, deadline, complete, limit=4096):
    """Send ``payload`` and read until ``complete(received)`` is true, the peer closes, or ``limit``
    bytes, all before ``deadline``; returns what was received. Raises socket.timeout at the deadline."""
    received = b""
    arm(sock, deadline)
    sock.sendall(payload)
    while len(received) < limit and not complete(received):
        arm(sock, deadline)
        data = sock.recv(limit - len(received))
        if not data:
            break
        received += data
    return received


def arm(sock, deadline):
    """Give ``sock`` what is left until ``deadline`` as its timeout; socket.timeout when nothing is."""
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise socket.timeout("deadline passed")
    sock.settimeout(remaining)
