"""Local images for the test-bed: no registry can be reached, so they are built here.

- ``edgex-testbed-base:<hash>``: Debian bookworm minbase + python3 by debootstrap, then
  ``docker import`` (the rootfs tarball is cached under tests/testbed/.cache/).
- ``edgex-standin:<hash>``: the base plus the stand-in service and the registry emulators,
  tagged by a hash of those files, so a second build takes a second.
"""

import glob
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
CACHE = os.path.join(HERE, ".cache")
SUITE = "bookworm"
BASE_PACKAGES = "python3,ca-certificates"
LABEL = "edgex.testbed=1"
# Which checkout built a stand-in image: several worktrees share one engine, and each prunes
# only its own old images (another's may be in use between two of its `docker run`s).
SOURCE_LABEL = "edgex.testbed.source"
# Files baked into the stand-in image, at /opt/edgex-testbed/<name>.
PAYLOAD = ("standin/edgex_standin.py", "consul_emulator.py", "keeper_emulator.py", "emulator_http.py")


def log(message):
    sys.stderr.write("images: %s\n" % message)
    sys.stderr.flush()


def run(argv, **kwargs):
    return subprocess.run(argv, check=True, **kwargs)


def image_exists(tag):
    return subprocess.run(["docker", "image", "inspect", tag], stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL).returncode == 0


def apt_source_files(etc="/etc/apt"):
    return sorted(glob.glob(os.path.join(etc, "sources.list.d", "*.sources"))) + [
        os.path.join(etc, "sources.list")] + sorted(glob.glob(os.path.join(etc, "sources.list.d", "*.list")))


def debian_mirror(paths=None):
    """The Debian mirror apt already uses (deb822 or one-line sources), so debootstrap reaches the
    same one; None when apt names none, and debootstrap then uses its own default. Only entries
    with the ``main`` component count: a third-party repository whose path ends in /debian (Docker's)
    is no Debian mirror."""
    for path in apt_source_files() if paths is None else paths:
        try:
            with open(path) as handle:
                text = handle.read()
        except OSError:
            continue
        for stanza in re.split(r"\n\s*\n", text):  # deb822: one source per paragraph
            uri = re.search(r"^URIs:\s*(\S+/debian)/?\s*$", stanza, re.M)
            if uri and re.search(r"^Components:.*\bmain\b", stanza, re.M):
                return uri.group(1)
        found = re.search(r"^deb\s+(?:\[[^\]]*\]\s+)?(\S+/debian)/?\s+\S+\s+.*\bmain\b", text, re.M)
        if found:
            return found.group(1)
    return None


def debootstrap_argv(root, mirror):
    """debootstrap's command line; without a mirror it picks its own default for the suite."""
    return ["debootstrap", "--variant=minbase", "--include=%s" % BASE_PACKAGES, SUITE, root] + (
        [mirror] if mirror else [])


def base_image():
    """Build (once) the Debian minbase + python3 image; return its tag."""
    key = hashlib.sha256(("%s|%s|minbase" % (SUITE, BASE_PACKAGES)).encode()).hexdigest()[:12]
    tag = "edgex-testbed-base:%s" % key
    if image_exists(tag):
        return tag
    os.makedirs(CACHE, exist_ok=True)
    tarball = os.path.join(CACHE, "rootfs-%s.tar" % key)
    if not os.path.exists(tarball):
        if shutil.which("debootstrap") is None:
            raise SystemExit("images: debootstrap is missing (apt-get install debootstrap)")
        root = tempfile.mkdtemp(prefix="edgex-rootfs-")
        try:
            mirror = debian_mirror()
            log("debootstrap %s (minbase + %s) from %s; this takes a minute once"
                % (SUITE, BASE_PACKAGES, mirror or "debootstrap's default mirror"))
            run(debootstrap_argv(root, mirror), stdout=subprocess.DEVNULL)
            for cruft in ("var/cache/apt/archives", "var/lib/apt/lists"):
                shutil.rmtree(os.path.join(root, cruft), ignore_errors=True)
            run(["tar", "-C", root, "-cf", tarball + ".tmp", "."])
            os.replace(tarball + ".tmp", tarball)
        finally:
            shutil.rmtree(root, ignore_errors=True)
    log("importing %s" % tag)
    with open(tarball, "rb") as handle:
        run(["docker", "import", "--change", "LABEL %s" % LABEL, "-", tag], stdin=handle, stdout=subprocess.DEVNULL)
    return tag


def payload_hash(base):
    digest = hashlib.sha256(base.encode())
    for name in PAYLOAD:
        digest.update(name.encode())
        with open(os.path.join(HERE, name), "rb") as handle:
            digest.update(handle.read())
    return digest.hexdigest()[:12]


def standin_image():
    """The stand-in image tag, built if missing (seconds once the base exists)."""
    base = base_image()
    tag = "edgex-standin:%s" % payload_hash(base)
    if image_exists(tag):
        return tag
    context = tempfile.mkdtemp(prefix="edgex-standin-")
    try:
        lines = ["FROM %s" % base, "LABEL %s" % LABEL, 'LABEL %s="%s"' % (SOURCE_LABEL, HERE)]
        for name in PAYLOAD:
            shutil.copy(os.path.join(HERE, name), os.path.join(context, os.path.basename(name)))
            lines.append("COPY %s /opt/edgex-testbed/%s" % (os.path.basename(name), os.path.basename(name)))
        lines.append('ENTRYPOINT ["python3", "/opt/edgex-testbed/edgex_standin.py"]')
        with open(os.path.join(context, "Dockerfile"), "w") as handle:
            handle.write("\n".join(lines) + "\n")
        log("building %s" % tag)
        run(["docker", "build", "-q", "-t", tag, context], stdout=subprocess.DEVNULL,
            env=dict(os.environ, DOCKER_BUILDKIT="0"))
    finally:
        shutil.rmtree(context, ignore_errors=True)
    prune_old("edgex-standin", keep=tag)
    return tag


def prune_old(repository, keep):
    """Remove older stand-in tags this checkout built that no container uses."""
    listed = subprocess.run(["docker", "images", repository, "--filter", "label=%s=%s" % (SOURCE_LABEL, HERE),
                             "--format", "{{.Repository}}:{{.Tag}}"], capture_output=True, text=True).stdout.split()
    for tag in listed:
        if tag != keep:
            subprocess.run(["docker", "rmi", tag], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


if __name__ == "__main__":
    print(standin_image())
