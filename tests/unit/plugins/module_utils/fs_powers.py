"""What the file tests need from the machine: a small tmpfs, a read-only bind mount, an immutable
directory, a file owned by another user. Each is undone when the test ends, and each skips the
test, saying why, where the machine refuses it (not root, no mount in this container, ...)."""

import contextlib
import os
import subprocess

import pytest

OTHER_UID = 1000  # any uid that is not ours; need not exist in /etc/passwd
OTHER_GID = 1000


def _run(argv):
    return subprocess.run(argv, capture_output=True, text=True, check=False)


def _need_root(what):
    if os.geteuid() != 0:
        pytest.skip("%s needs root" % what)


@contextlib.contextmanager
def tmpfs(path, size="256k"):
    """A tmpfs of ``size`` mounted on the directory ``path``."""
    _need_root("mounting a tmpfs")
    mounted = _run(["mount", "-t", "tmpfs", "-o", "size=%s,mode=0755" % size, "edgex-test-tmpfs", str(path)])
    if mounted.returncode != 0:
        pytest.skip("this machine refuses to mount a tmpfs: %s" % mounted.stderr.strip())
    try:
        yield str(path)
    finally:
        _run(["umount", str(path)])


@contextlib.contextmanager
def read_only(path):
    """The directory ``path`` bind-mounted read-only onto itself."""
    _need_root("a read-only bind mount")
    bound = _run(["mount", "--bind", str(path), str(path)])
    if bound.returncode != 0:
        pytest.skip("this machine refuses a bind mount: %s" % bound.stderr.strip())
    try:
        remounted = _run(["mount", "-o", "remount,ro,bind", str(path)])
        if remounted.returncode != 0:
            pytest.skip("this machine refuses to make a bind mount read-only: %s" % remounted.stderr.strip())
        yield str(path)
    finally:
        _run(["umount", str(path)])


@contextlib.contextmanager
def immutable(path):
    """``chattr +i`` on ``path`` (nothing can be created, renamed or removed in a directory)."""
    _need_root("chattr +i")
    made = _run(["chattr", "+i", str(path)])
    if made.returncode != 0:
        pytest.skip("this file system refuses chattr +i: %s" % made.stderr.strip())
    try:
        yield str(path)
    finally:
        _run(["chattr", "-i", str(path)])


def give_away(path, uid=OTHER_UID, gid=OTHER_GID):
    """chown ``path`` to another user, or skip."""
    try:
        os.chown(str(path), uid, gid)
    except PermissionError as exc:
        pytest.skip("cannot give a file to uid %d here: %s" % (uid, exc))


def fill(directory):
    """Fill the file system of ``directory`` to the last byte (a file named filler)."""
    fd = os.open(os.path.join(str(directory), "filler"), os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for chunk in (b"\0" * 65536, b"\0" * 4096, b"\0"):
            try:
                while True:
                    os.write(fd, chunk)
            except OSError:
                continue
    finally:
        os.close(fd)
