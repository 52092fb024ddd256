# -*- coding: utf-8 -*-
# Copyright (c) edgex.sysmgmt contributors
# Apache License 2.0 (see LICENSE)
"""Files that survive crashes and concurrent writers: atomic replacement and an exclusive lock.

Shared by the manifest store and the remediation ledger.
"""

from __future__ import annotations

import fcntl
import os
import tempfile

from ._errors import EdgeXError


def atomic_write(path, payload):
    """Temp file in the same directory, fsync, rename, fsync the directory: a crash at any
    point leaves either the old file or the new one, never a mix."""
    directory = os.path.dirname(path)
    fd, tmp = tempfile.mkstemp(prefix=".%s." % os.path.basename(path), suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        if os.path.exists(path):
            os.chmod(tmp, os.stat(path).st_mode & 0o7777)
        else:
            os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


class FileLock(object):
    """An exclusive flock on a side file, so concurrent writers serialise. ``error``: the
    EdgeXError class to raise, naming what the lock protects."""

    def __init__(self, path, error=EdgeXError):
        self.path = path
        self.error = error
        self.handle = None

    def __enter__(self):
        try:
            self.handle = open(self.path, "a")
        except IOError as exc:
            raise self.error("cannot lock %s: %s" % (self.path, exc.strerror or exc))
        fcntl.flock(self.handle.fileno(), fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc_info):
        fcntl.flock(self.handle.fileno(), fcntl.LOCK_UN)
        self.handle.close()


def read_bytes(path):
    with open(path, "rb") as handle:
        return handle.read()
