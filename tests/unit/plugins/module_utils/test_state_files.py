"""The collection's own files (the manifest and the remediation ledger) on an unlucky machine:
symlinks, private modes and other owners, a lock file that is a symlink, writers killed mid-write,
a full disk, a read-only or immutable directory, a backup that is a directory (issue 11, items 1,
2, 6 and 11). Each case is made for real: real links, a real chown, a real tmpfs, real mounts."""

import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import textwrap
import threading
import time

import pytest

from ansible_collections.edgex.sysmgmt.plugins.module_utils import _fileio
from ansible_collections.edgex.sysmgmt.plugins.module_utils._errors import ManifestError
from ansible_collections.edgex.sysmgmt.plugins.module_utils._gateway.ledger import Ledger, LedgerError
from ansible_collections.edgex.sysmgmt.plugins.module_utils._manifest.edits import set_service
from ansible_collections.edgex.sysmgmt.plugins.module_utils._manifest.store import ManifestStore

from fs_powers import OTHER_GID, OTHER_UID, fill, give_away, immutable, read_only, tmpfs

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..", ".."))
# Where this run imports the collection from (.collections here; ansible-test's tree when it runs
# the installed tarball's tests), for the writers started as subprocesses.
COLLECTIONS = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.dirname(os.path.abspath(_fileio.__file__)))))))


class ManifestFile(object):
    """The manifest as one of the two files under test: what it starts as, one write, its error."""

    name = "manifest.yml"
    error = ManifestError
    initial = "version: 1\nhosts:\n  gw1:\n    address: 127.0.0.1\n    services: {}\n"
    opener = "ManifestStore"

    @staticmethod
    def write(path, n=1):
        ManifestStore(str(path)).update(lambda data: set_service(data, "gw1", "svc%d" % n, {"port": 1000 + n}))

    @staticmethod
    def entries(path):
        return sorted(ManifestStore(str(path)).read()["hosts"]["gw1"]["services"])

    @staticmethod
    def lock_path(path):
        return ManifestStore(str(path)).lock_path


class LedgerFile(object):
    name = "remediation.json"
    error = LedgerError
    initial = '{"version": 1, "services": {}}\n'

    @staticmethod
    def write(path, n=1):
        def change(data):
            data["services"]["gw1/svc%d" % n] = {"restarts": [float(n)]}
            return data
        Ledger(str(path)).update(change)

    @staticmethod
    def entries(path):
        return sorted(key.split("/")[1] for key in Ledger(str(path)).read()["services"])

    @staticmethod
    def lock_path(path):
        return Ledger(str(path)).lock_path


KINDS = [ManifestFile, LedgerFile]
kinds = pytest.mark.parametrize("kind", KINDS, ids=["manifest", "ledger"])


def make(directory, kind, mode=0o644):
    os.makedirs(str(directory), exist_ok=True)
    path = os.path.join(str(directory), kind.name)
    with open(path, "w") as handle:
        handle.write(kind.initial)
    os.chmod(path, mode)
    return path


def temporaries(directory):
    return sorted(name for name in os.listdir(str(directory)) if name.endswith(".tmp"))


# -- 1. symlinks ------------------------------------------------------------------------------
@kinds
def test_a_symlinked_file_is_written_through_and_the_link_stays(tmp_path, kind):
    real = make(tmp_path / "data", kind)
    os.makedirs(str(tmp_path / "etc"))
    link = str(tmp_path / "etc" / kind.name)
    os.symlink(real, link)

    kind.write(link, 1)

    assert os.path.islink(link) and os.readlink(link) == real
    assert kind.entries(real) == ["svc1"]
    assert os.path.exists(real + ".lock") and not os.path.lexists(link + ".lock")


@kinds
def test_writers_through_the_link_and_the_real_path_share_one_lock(tmp_path, kind):
    real = make(tmp_path / "data", kind)
    link = str(tmp_path / kind.name)
    os.symlink(real, link)
    assert kind.lock_path(link) == kind.lock_path(real)
    threads = [threading.Thread(target=kind.write, args=(link if n % 2 else real, n)) for n in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert kind.entries(real) == sorted("svc%d" % n for n in range(16))  # not one write lost
    assert os.path.islink(link)


@kinds
def test_a_symlink_to_a_file_that_is_not_ours_is_refused(tmp_path, kind):
    other = tmp_path / "passwd"
    other.write_text("root:x:0:0:root:/root:/bin/bash\n")
    link = str(tmp_path / kind.name)
    os.symlink(str(other), link)
    with pytest.raises(kind.error, match="invalid|not JSON|not valid YAML"):
        kind.write(link)
    assert other.read_text() == "root:x:0:0:root:/root:/bin/bash\n"
    assert os.path.islink(link)


# -- 2. modes, owners, lock files, temporary files --------------------------------------------
@kinds
def test_mode_and_owner_survive_a_write(tmp_path, kind):
    path = make(tmp_path, kind, mode=0o600)
    give_away(path)
    kind.write(path)
    status = os.stat(path)
    assert (stat.S_IMODE(status.st_mode), status.st_uid, status.st_gid) == (0o600, OTHER_UID, OTHER_GID)
    lock = os.stat(kind.lock_path(path))
    assert (stat.S_IMODE(lock.st_mode), lock.st_uid, lock.st_gid) == (0o600, OTHER_UID, OTHER_GID)


def test_the_backup_is_never_wider_than_the_manifest(tmp_path):
    path = make(tmp_path, ManifestFile, mode=0o600)
    give_away(path)
    with open(path + ".bak", "w") as handle:  # an old, world-readable backup
        handle.write("old\n")
    os.chmod(path + ".bak", 0o644)
    ManifestFile.write(path)
    backup = os.stat(path + ".bak")
    assert (stat.S_IMODE(backup.st_mode), backup.st_uid, backup.st_gid) == (0o600, OTHER_UID, OTHER_GID)
    assert open(path + ".bak").read() == ManifestFile.initial


@kinds
def test_the_temporary_file_has_the_final_mode_and_owner_before_its_first_byte(tmp_path, kind, monkeypatch):
    path = make(tmp_path, kind, mode=0o640)
    give_away(path)
    seen = []
    real_write = os.write

    def watching_write(fd, data):
        if not seen:
            status = os.fstat(fd)
            seen.append((stat.S_IMODE(status.st_mode), status.st_uid, status.st_gid))
        return real_write(fd, data)

    monkeypatch.setattr(_fileio.os, "write", watching_write)
    kind.write(path)
    monkeypatch.undo()
    assert seen and all(mode_owner == (0o640, OTHER_UID, OTHER_GID) for mode_owner in seen)


@kinds
def test_a_lock_file_that_is_a_symlink_is_refused_not_followed(tmp_path, kind):
    path = make(tmp_path, kind)
    target = tmp_path / "elsewhere" / "created-through-the-link"
    os.makedirs(str(target.parent))
    os.symlink(str(target), kind.lock_path(path))
    with pytest.raises(kind.error, match="it is a symlink, which is never followed"):
        kind.write(path)
    assert not target.exists()
    assert open(path).read() == kind.initial


@kinds
def test_stale_temporary_files_of_ours_are_removed_by_the_next_write(tmp_path, kind):
    path = make(tmp_path, kind)
    old = time.time() - 2 * _fileio.STALE_AFTER
    name = kind.name
    ours_old = [".%s.abcd1234.tmp" % name, ".%s.bak.k2j4h5g6.tmp" % name]
    kept = [".%s.fresh000.tmp" % name,  # a writer may still be at it
            ".other.yml.abcd1234.tmp",  # not ours
            ".%s.notours.tmp" % name]  # not our naming
    for entry in ours_old + kept:
        (tmp_path / entry).write_text("x")
    os.symlink("/etc/hostname", str(tmp_path / (".%s.linklink.tmp" % name)))  # never removed: a link
    for entry in ours_old + kept[1:]:
        os.utime(str(tmp_path / entry), (old, old))
    if kind is LedgerFile:  # the ledger has no backup: its name is not the ledger's
        kept.append(ours_old.pop())
    kind.write(path)
    assert temporaries(tmp_path) == sorted(kept + [".%s.linklink.tmp" % name])


@kinds
def test_a_writer_killed_during_its_write_leaves_no_temporary_file_forever(tmp_path, kind):
    """SIGKILL a writer while its temporary file is being flushed: the file stays whole, and
    the temporary file it left is removed by the next write (once it is old enough to be sure)."""
    path = make(tmp_path, kind)
    writer = subprocess.Popen([sys.executable, "-c", textwrap.dedent("""
        import os, sys, time
        sys.path.insert(0, %r)
        from ansible_collections.edgex.sysmgmt.plugins.module_utils import _fileio
        def stuck_fsync(fd):
            print("flushing", flush=True)
            time.sleep(600)
        _fileio.os.fsync = stuck_fsync
        sys.path.insert(0, %r)
        from test_state_files import %s as kind
        kind.write(%r, 7)
    """) % (COLLECTIONS, os.path.dirname(__file__), kind.__name__, path)], stdout=subprocess.PIPE)
    try:
        assert writer.stdout.readline() == b"flushing\n"
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.wait()
    left = temporaries(tmp_path)
    assert len(left) == 1 and open(path).read() == kind.initial
    old = time.time() - 2 * _fileio.STALE_AFTER
    os.utime(str(tmp_path / left[0]), (old, old))
    kind.write(path, 8)
    assert temporaries(tmp_path) == [] and kind.entries(path) == ["svc8"]


# -- 6. OS errors: a clear error naming the file and the step; the file untouched ---------------
@kinds
def test_a_full_disk_is_a_clear_error_and_the_file_stays_whole(tmp_path, kind):
    directory = tmp_path / "small"
    directory.mkdir()
    with tmpfs(directory, "256k"):
        path = make(directory, kind)
        kind.write(path, 1)  # the lock file exists now, as after any earlier write
        before = open(path).read()
        fill(directory)
        with pytest.raises(kind.error) as info:
            kind.write(path, 2)
        message = str(info.value)
        assert path in message and "No space left on device (ENOSPC)" in message
        assert open(path).read() == before
        assert temporaries(directory) == []


@kinds
@pytest.mark.parametrize("frozen, cause", [(immutable, "Operation not permitted (EPERM)"),
                                           (read_only, "Read-only file system (EROFS)")],
                         ids=["chattr+i", "read-only-bind-mount"])
def test_a_directory_that_takes_no_write_is_a_clear_error(tmp_path, kind, frozen, cause):
    directory = tmp_path / "frozen"
    path = make(directory, kind)
    kind.write(path, 1)
    before = open(path).read()
    with frozen(directory):
        with pytest.raises(kind.error) as info:
            kind.write(path, 2)
    assert path in str(info.value) and cause in str(info.value)
    assert open(path).read() == before


def test_a_backup_that_is_a_directory_is_a_clear_error(tmp_path):
    path = make(tmp_path, ManifestFile)
    os.mkdir(path + ".bak")
    with pytest.raises(ManifestError) as info:
        ManifestFile.write(path)
    message = str(info.value)
    assert "cannot write backup of manifest %s.bak" % path in message and "(EISDIR)" in message
    assert open(path).read() == ManifestFile.initial and temporaries(tmp_path) == []


@kinds
def test_a_file_that_cannot_be_read_is_a_clear_error(tmp_path, kind):
    path = os.path.join(str(tmp_path), kind.name)
    os.mkdir(path)
    with pytest.raises(kind.error, match="cannot read .*%s: it is not a regular file|Is a directory" % kind.name):
        kind.write(path)


def test_a_ledger_that_is_not_utf8_is_named_not_a_crash(tmp_path):
    path = tmp_path / "remediation.json"
    path.write_bytes(b'{"version": 1, "services": {"\xff": {}}}')
    with pytest.raises(LedgerError, match="ledger %s is invalid: not UTF-8 text \\(byte 0xff" % path):
        Ledger(str(path)).read()


@pytest.fixture
def shared_directory():
    """A directory every user may write, outside pytest's private tmp_path."""
    path = tempfile.mkdtemp(prefix="edgex-shared-")
    os.chmod(path, 0o777)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_owner_that_cannot_be_kept_fails_instead_of_changing_hands(shared_directory):
    """A writer that may not give the new file the old owner (not root, another user's file in a
    directory it may write) fails, naming the owner, and leaves the file alone."""
    if os.geteuid() != 0:
        pytest.skip("needs root to act as two users")
    path = make(shared_directory, ManifestFile, mode=0o666)
    give_away(path, OTHER_UID + 1, OTHER_GID + 1)
    child = subprocess.run([sys.executable, "-c", textwrap.dedent("""
        import os, sys
        sys.path.insert(0, %r)
        from ansible_collections.edgex.sysmgmt.plugins.module_utils._errors import ManifestError
        from ansible_collections.edgex.sysmgmt.plugins.module_utils._manifest.store import ManifestStore
        os.setgid(%d); os.setuid(%d)  # after the imports: the user need not read the venv
        try:
            ManifestStore(%r).update(lambda d: dict(d, generated_from="me"))
        except ManifestError as exc:
            print(exc)
    """) % (COLLECTIONS, OTHER_GID, OTHER_UID, path)], capture_output=True, text=True, check=False)
    assert "the owner (uid %d, gid %d)" % (OTHER_UID + 1, OTHER_GID + 1) in child.stdout, child.stderr
    assert "Operation not permitted" in child.stdout
    assert os.stat(path).st_uid == OTHER_UID + 1 and open(path).read() == ManifestFile.initial


def test_a_new_file_gets_0644_less_the_umask_and_no_wider(tmp_path):
    old = os.umask(0o077)
    try:
        ManifestStore(str(tmp_path / "new.yml")).write({"version": 1, "hosts": {}})
        _fileio.atomic_write(str(tmp_path / "x.json"), json.dumps({}).encode())
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(str(tmp_path / "new.yml")).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(str(tmp_path / "x.json")).st_mode) == 0o600


@kinds
def test_a_fifo_in_place_of_the_file_or_its_lock_is_refused_without_hanging(tmp_path, kind):
    path = os.path.join(str(tmp_path), kind.name)
    os.mkfifo(path)
    with pytest.raises(kind.error, match="it is not a regular file"):
        kind.write(path)
    os.unlink(path)
    path = make(tmp_path, kind)
    if os.path.exists(kind.lock_path(path)):  # the ledger locks before it reads
        os.unlink(kind.lock_path(path))
    os.mkfifo(kind.lock_path(path))
    with pytest.raises(kind.error, match="cannot lock .*: it is not a regular file"):
        kind.write(path)
    assert open(path).read() == kind.initial
