# -*- coding: utf-8 -*-
# Copyright (c) edgex.sysmgmt contributors
# Apache License 2.0 (see LICENSE)
"""Many short exchanges at once, in one thread, each under one deadline.

An exchange connects to a peer (the first of its addresses that accepts), sends a short request
and reads the answer until it is complete, the peer closes, or a limit; one deadline covers all of
it. ``exchange_all`` runs many over non-blocking sockets and one selector, at most
``max_in_flight`` at a time, each deadline starting when its exchange does: what a pool of that
many threads, each with a blocking socket, did, without a thread (its start, its stack, its
switches) per exchange. What may block before an exchange can start (a name lookup, waited for up
to the deadline) runs in a few helper threads while the others go on.
"""

from __future__ import annotations

import errno
import heapq
import os
import resource
import selectors
import socket
import time
from collections import deque, namedtuple
from concurrent.futures import ThreadPoolExecutor

# Descriptors left to the rest of the process (the registry's socket, files, the selector itself).
RESERVED_DESCRIPTORS = 64
# Threads for the jobs that may block (a name lookup waits up to its deadline, never longer).
HELPER_THREADS = 32
_CONNECT_PENDING = (errno.EINPROGRESS, errno.EAGAIN, errno.EALREADY)
CONNECTING, SENDING, READING = "connecting", "sending", "reading"

# ``start(deadline)`` -> the Exchange to run, or None when there is nothing to exchange; ``blocking``:
# start may wait (up to the deadline), so it runs in a helper thread when others could go on meanwhile.
Job = namedtuple("Job", "start blocking")


class Exchange(object):
    """Connect to the first of ``addresses`` ([(family, ip)]) that accepts on ``port``, send
    ``request`` (None: the connect is all), read until ``complete(received)`` is true (None: until
    the peer closes) or ``limit`` bytes are in; then send ``farewell(received)`` when it gives bytes
    (without waiting: a goodbye the peer may or may not read).

    Once run: ``received`` (bytes), ``error`` (None; socket.timeout when the deadline passed first;
    else the OSError that ended it), ``started`` and ``finished`` (time.monotonic() seconds)."""

    def __init__(self, addresses, port, request=None, complete=None, limit=4096, farewell=None):
        self.addresses = list(addresses)
        self.port = port
        self.request = request
        self.complete = complete
        self.limit = limit
        self.farewell = farewell
        self.received = b""
        self.error = None
        self.started = None
        self.finished = None
        self.deadline = None
        self._buffer = bytearray()
        self._sock = None
        self._state = CONNECTING
        self._events = 0  # what the selector watches the socket for; 0: not registered
        self._next_address = 0
        self._sent = 0
        self._connect_error = None


def exchange_all(jobs, max_in_flight, timeout):
    """Run ``jobs`` (Job), at most ``max_in_flight`` at once (and never more than the process's
    descriptor limit leaves room for), in their order; each gets ``timeout`` seconds from its
    start. Returns when every exchange has ended; each Exchange holds its outcome."""
    jobs = list(jobs)
    if jobs:
        _Run(jobs, max(1, min(max_in_flight, _descriptor_room())), timeout).run()


def _descriptor_room():
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return soft
    return max(1, soft - RESERVED_DESCRIPTORS)


class _Run(object):
    def __init__(self, jobs, in_flight_limit, timeout):
        self.jobs = jobs
        self.waiting = deque(jobs)
        self.in_flight_limit = in_flight_limit
        self.timeout = timeout
        self.in_flight = 0  # started and not ended, helper threads' jobs included
        self.selector = selectors.DefaultSelector()
        self.deadlines = []  # heap of (deadline, sequence, Exchange) on a socket
        self.sequence = 0
        self.helpers = None  # ThreadPoolExecutor, made for the first blocking job that needs it
        self.helped = deque()  # (deadline, future) of the helper threads' jobs that are done
        self.wake = None  # (reader, writer): a helper thread's job is done

    def run(self):
        try:
            while self.waiting or self.in_flight:
                self._start_waiting()
                if self.in_flight:
                    self._wait()
        finally:
            self._close()

    # -- starting --------------------------------------------------------------------------------
    def _start_waiting(self):
        while self.waiting and self.in_flight < self.in_flight_limit:
            job = self.waiting.popleft()
            deadline = time.monotonic() + self.timeout
            self.in_flight += 1
            if job.blocking and (self.waiting or self.in_flight > 1):
                self._help(job, deadline)
            else:  # nothing else to do meanwhile: a blocking start may block
                self._begin(job.start(deadline), deadline)

    def _help(self, job, deadline):
        if self.helpers is None:
            self.helpers = ThreadPoolExecutor(max_workers=HELPER_THREADS, thread_name_prefix="edgex-exchange")
            self.wake = socket.socketpair()
            for end in self.wake:
                end.setblocking(False)
            self.selector.register(self.wake[0], selectors.EVENT_READ, None)
        future = self.helpers.submit(job.start, deadline)
        future.add_done_callback(lambda done: self._helped(deadline, done))

    def _helped(self, deadline, future):
        """In the helper thread: hand the result to the loop, and wake it."""
        self.helped.append((deadline, future))
        try:
            self.wake[1].send(b"\0")
        except OSError:
            pass  # the pipe is full: the loop is woken already

    def _take_helped(self):
        while self.helped:
            deadline, future = self.helped.popleft()
            self._begin(future.result(), deadline)  # a job's exception is raised here

    def _begin(self, exchange, deadline):
        if exchange is None:
            self.in_flight -= 1
            return
        exchange.started, exchange.deadline = deadline - self.timeout, deadline
        self.sequence += 1
        heapq.heappush(self.deadlines, (deadline, self.sequence, exchange))
        self._connect(exchange)

    # -- the exchange's steps ------------------------------------------------------------------
    def _connect(self, exchange):
        """Start connecting to the next address, or end the exchange when none is left."""
        while exchange._next_address < len(exchange.addresses):
            if time.monotonic() >= exchange.deadline:
                self._end(exchange, socket.timeout("deadline passed"))
                return
            family, ip = exchange.addresses[exchange._next_address]
            exchange._next_address += 1
            try:
                sock = socket.socket(family, socket.SOCK_STREAM)
            except OSError as exc:
                self._end(exchange, exc)
                return
            sock.setblocking(False)
            code = sock.connect_ex((ip, exchange.port))
            if code == 0 or code in _CONNECT_PENDING:
                exchange._sock, exchange._state = sock, CONNECTING
                if code == 0:
                    self._send(exchange)
                else:
                    self._watch(exchange, selectors.EVENT_WRITE)
                return
            sock.close()
            exchange._connect_error = OSError(code, os.strerror(code))
        self._end(exchange, exchange._connect_error or OSError("no address to connect to"))

    def _connected(self, exchange):
        code = exchange._sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if code == 0:
            self._send(exchange)
            return
        self._unwatch(exchange)
        exchange._sock.close()
        exchange._sock = None
        exchange._connect_error = OSError(code, os.strerror(code))
        self._connect(exchange)

    def _send(self, exchange):
        exchange._state = SENDING
        if exchange.request is None:
            self._end(exchange, None)
            return
        try:
            exchange._sent += exchange._sock.send(exchange.request[exchange._sent:])
        except BlockingIOError:
            pass
        except OSError as exc:
            self._end(exchange, exc)
            return
        if exchange._sent < len(exchange.request):
            self._watch(exchange, selectors.EVENT_WRITE)
        else:
            exchange._state = READING
            self._watch(exchange, selectors.EVENT_READ)

    def _read(self, exchange):
        try:
            data = exchange._sock.recv(min(65536, exchange.limit - len(exchange._buffer)))
        except BlockingIOError:
            return
        except OSError as exc:
            self._end(exchange, exc)
            return
        exchange._buffer += data
        if data and len(exchange._buffer) < exchange.limit and not (
                exchange.complete and exchange.complete(exchange._buffer)):
            return
        goodbye = exchange.farewell(bytes(exchange._buffer)) if exchange.farewell else None
        if goodbye:
            try:
                exchange._sock.send(goodbye)
            except OSError:
                pass  # the answer was had; a peer that closed first changes nothing
        self._end(exchange, None)

    def _end(self, exchange, error):
        exchange.error = error
        exchange.finished = time.monotonic()
        exchange.received = bytes(exchange._buffer)
        if exchange._sock is not None:
            self._unwatch(exchange)
            exchange._sock.close()
            exchange._sock = None
        self.in_flight -= 1

    # -- the selector -------------------------------------------------------------------------
    def _watch(self, exchange, events):
        if exchange._events == events:
            return
        if exchange._events:
            self.selector.modify(exchange._sock, events, exchange)
        else:
            self.selector.register(exchange._sock, events, exchange)
        exchange._events = events

    def _unwatch(self, exchange):
        if exchange._events:
            self.selector.unregister(exchange._sock)
            exchange._events = 0

    def _wait(self):
        while self.deadlines and self.deadlines[0][2].finished is not None:
            heapq.heappop(self.deadlines)  # ended before its deadline: not a reason to wake up
        wait = None
        if self.deadlines:
            wait = max(0.0, self.deadlines[0][0] - time.monotonic())
        steps = {CONNECTING: self._connected, SENDING: self._send, READING: self._read}
        for key, _mask in self.selector.select(wait):
            exchange = key.data
            if exchange is None:
                self._drain_wake()
            elif key.fileobj is exchange._sock:  # not a socket this batch already closed or replaced
                steps[exchange._state](exchange)
        self._take_helped()
        self._expire()

    def _drain_wake(self):
        try:
            while self.wake[0].recv(4096):
                pass
        except BlockingIOError:
            pass

    def _expire(self):
        now = time.monotonic()
        while self.deadlines and self.deadlines[0][0] <= now:
            _deadline, _sequence, exchange = heapq.heappop(self.deadlines)
            if exchange.finished is None:
                self._end(exchange, socket.timeout("deadline passed"))

    def _close(self):
        """After the run, or when a job raised: nothing stays open."""
        for _deadline, _sequence, exchange in self.deadlines:
            if exchange._sock is not None:
                exchange._sock.close()
        if self.helpers is not None:
            self.helpers.shutdown(wait=not self.in_flight, cancel_futures=True)
            for end in self.wake:
                end.close()
        self.selector.close()
