# -*- coding: utf-8 -*-
# Copyright (c) edgex.sysmgmt contributors
# Apache License 2.0 (see LICENSE)
"""Files that survive crashes, concurrent writers and unlucky machines: the real path behind a
symlink, atomic replacement that keeps the file's mode and owner, an exclusive lock that never
follows a symlink, the clean-up of what a killed writer left, and every OS error as an EdgeXError
naming the path and what was being done.

Shared by the manifest store and the remediation ledger; ``error`` is the EdgeXError class they
raise (ManifestError, LedgerError) and ``what`` the name of the file in messages ("manifest").
"""

from __future__ import annotations

import errno
import fcntl
import os
import random
import re
import stat
import time

from ._errors import EdgeXError

# Temporary files are ".<name>.<8 characters>.tmp" beside the file (the names tempfile.mkstemp
# gave them before, so files left by older versions are recognised too).
_TEMP_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789_"
_TEMP_NAME = re.compile(r"^\.(?P<name>.+)\.[a-z0-9_]{8}\.tmp$")
# A temporary file of ours older than this, found while holding the file's lock, was left by a
# writer that died: no writer keeps one open longer than a write takes.
STALE_AFTER = 60.0
NEW_FILE_MODE = 0o644  # narrowed by the umask, as any new file


def describe_os_error(exc):
    """'No space left on device (ENOSPC)': the reason of an OSError, with its errno name."""
    reason = exc.strerror or str(exc)
    name = errno.errorcode.get(exc.errno) if exc.errno else None
    return "%s (%s)" % (reason, name) if name else reason


def real_path(path):
    """The absolute path of the file behind ``path``, every symlink resolved. Resolved once by the
    owner of the file so that writers using a link and writers using the real path lock and
    replace the same file, and a write replaces the target, never the link."""
    return os.path.realpath(os.path.abspath(os.path.expanduser(path)))


def file_status(path, error=EdgeXError, what="file"):
    """os.stat of ``path``, or None when it does not exist."""
    try:
        return os.stat(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise error("cannot read %s %s: %s" % (what, path, describe_os_error(exc)))


def read_bytes(path, error=EdgeXError, what="file", missing_ok=False):
    """The bytes of the regular file ``path``; None when it does not exist and ``missing_ok``."""
    try:
        # O_NONBLOCK: a FIFO planted where the file should be must not hang the read
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        if missing_ok:
            return None
        raise error("cannot read %s %s: it does not exist" % (what, path))
    except OSError as exc:
        raise error("cannot read %s %s: %s" % (what, path, describe_os_error(exc)))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise error("cannot read %s %s: it is not a regular file" % (what, path))
        chunks = []
        while True:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)
    except OSError as exc:
        raise error("cannot read %s %s: %s" % (what, path, describe_os_error(exc)))
    finally:
        os.close(fd)


def _temporary_name(path):
    directory, name = os.path.split(path)
    token = "".join(random.choices(_TEMP_CHARS, k=8))
    return os.path.join(directory, ".%s.%s.tmp" % (name, token))


def _take_over(fd, like, mode=None):
    """Give the open file ``fd`` the owner of ``like`` (an os.stat_result) and its mode (or
    ``mode``): owner first, since a change of owner clears the set-id bits."""
    current = os.fstat(fd)
    uid = like.st_uid if like.st_uid != current.st_uid else -1
    gid = like.st_gid if like.st_gid != current.st_gid else -1
    if uid != -1 or gid != -1:
        os.fchown(fd, uid, gid)
    os.fchmod(fd, stat.S_IMODE(like.st_mode) if mode is None else mode)


def atomic_write(path, payload, error=EdgeXError, what="file", like=None):
    """Replace ``path`` by ``payload``: a temporary file in the same directory, fsync, rename, fsync
    of the directory, so a crash at any point leaves either the old file or the new one.

    The new file keeps the mode and owner of ``like`` (an os.stat_result; default: the file being
    replaced). The temporary file is created with that mode, never a wider one, and gets the owner
    before any byte is written. Without either, a new file is 0644 less the umask. Any OSError
    becomes ``error`` naming the path and the step; the file itself is then untouched."""
    if like is None:
        like = file_status(path, error, what)
    directory = os.path.dirname(path)
    temporary = _temporary_name(path)
    step = "create a temporary file in %s" % directory
    mode = stat.S_IMODE(like.st_mode) & 0o777 if like is not None else NEW_FILE_MODE
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(temporary, flags, mode)
    except OSError as exc:
        raise error("cannot write %s %s: %s: %s" % (what, path, step, describe_os_error(exc)))
    try:
        try:
            if like is not None:
                step = "give %s the owner (uid %d, gid %d) and mode %04o of %s" % (
                    temporary, like.st_uid, like.st_gid, stat.S_IMODE(like.st_mode), path)
                _take_over(fd, like)
            step = "write %s" % temporary
            view = memoryview(payload)
            while view:
                view = view[os.write(fd, view):]
            step = "flush %s to disk" % temporary
            os.fsync(fd)
        finally:
            os.close(fd)
        step = "rename %s to %s" % (temporary, path)
        os.replace(temporary, path)
    except OSError as exc:
        _remove_quietly(temporary)
        raise error("cannot write %s %s: %s: %s" % (what, path, step, describe_os_error(exc)))
    except BaseException:
        _remove_quietly(temporary)
        raise
    _sync_directory(directory)


def _remove_quietly(path):
    try:
        os.unlink(path)
    except OSError:
        pass


def _sync_directory(directory):
    """fsync the directory so the rename itself survives a crash; some file systems cannot."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def remove_stale_temporaries(path, names=None, older_than=STALE_AFTER, now=None):
    """Remove the temporary files of ours (".<name>.XXXXXXXX.tmp", regular files, not links) that
    writers of ``path`` (and of ``names`` beside it, e.g. its backup) left behind when they were
    killed. Call it while holding the file's lock: no live writer has one then, and only files
    older than ``older_than`` seconds are touched in case a writer of another version did not
    lock. Best effort: returns the paths removed."""
    directory = os.path.dirname(path)
    ours = {os.path.basename(path)} | set(names or ())
    now = time.time() if now is None else now
    removed = []
    try:
        entries = os.listdir(directory)
    except OSError:
        return removed
    for entry in entries:
        match = _TEMP_NAME.match(entry)
        if not match or match.group("name") not in ours:
            continue
        candidate = os.path.join(directory, entry)
        try:
            status = os.lstat(candidate)
            if stat.S_ISREG(status.st_mode) and now - status.st_mtime >= older_than:
                os.unlink(candidate)
                removed.append(candidate)
        except OSError:
            continue
    return removed


class FileLock(object):
    """An exclusive flock on a side file, so concurrent writers serialise. ``error``: the
    EdgeXError class to raise, naming what the lock protects. The lock file is never a symlink
    (one is refused, not followed) and, when created, takes the mode (without execute bits) and
    owner of ``like`` (an os.stat_result of the file it protects), so its owner can lock it too."""

    def __init__(self, path, error=EdgeXError, like=None):
        self.path = path
        self.error = error
        self.like = like
        self.fd = None

    def _open(self):
        nofollow = getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
        mode = stat.S_IMODE(self.like.st_mode) & 0o666 if self.like is not None else NEW_FILE_MODE
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL | nofollow, mode)
        except FileExistsError:  # also a symlink, dangling or not: O_EXCL never follows one
            pass
        else:
            try:
                if self.like is not None:
                    _take_over(fd, self.like, mode)
            except OSError:
                pass  # a lock file that only we may open still locks; the next writer says so
            return fd
        try:
            return os.open(self.path, os.O_RDONLY | os.O_NONBLOCK | nofollow)  # flock needs no write access
        except OSError as exc:
            if exc.errno == errno.ELOOP or os.path.islink(self.path):
                raise self.error("cannot lock %s: it is a symlink, which is never followed (remove it)" % self.path)
            raise

    def __enter__(self):
        try:
            fd = self._open()
        except OSError as exc:
            raise self.error("cannot lock %s: %s" % (self.path, describe_os_error(exc)))
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise self.error("cannot lock %s: it is not a regular file" % self.path)
            fcntl.flock(fd, fcntl.LOCK_EX)
        except BaseException:
            os.close(fd)
            raise
        self.fd = fd
        return self

    def __exit__(self, *exc_info):
        try:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
        finally:
            os.close(self.fd)
            self.fd = None
