"""Local images for the test-bed: no registry can be reached, so they are built here.

- ``edgex-testbed-base:<hash>``: Debian bookworm minbase + python3 by debootstrap, then
  ``docker import`` (the rootfs tarball is cached under tests/testbed/.cache/).
- ``edgex-standin:<hash>``: the base plus the stand-in service and the registry emulators,
  tagged by a hash of those files, so a second build takes a second.
- ``edgex-systemd-gateway:<hash>``: the stand-in image plus systemd (run as PID 1), the
  stand-ins installed as units (systemd_units.py) and a user ``edgex`` with lingering on (its
  own user manager), tagged by a hash of the stand-in tag, the packages and the unit files.
  apt-get runs in a build container on the host network with this machine's CA bundle.
- ``edgex-compose-gateway:<hash>``: the stand-in image plus Debian's docker-compose (v1) and
  python3-consul2, for the molecule scenario's compose gateway.
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
REPO = os.path.dirname(os.path.dirname(HERE))
if REPO not in sys.path:
    sys.path.insert(0, REPO)
CACHE = os.path.join(HERE, ".cache")
SUITE = "bookworm"
BASE_PACKAGES = "python3,ca-certificates"
LABEL = "edgex.testbed=1"
# Which checkout built a stand-in image: several worktrees share one engine, and each prunes
# only its own old images (another's may be in use between two of its `docker run`s).
SOURCE_LABEL = "edgex.testbed.source"
# Files baked into the stand-in image, at /opt/edgex-testbed/<name>.
PAYLOAD = ("standin/edgex_standin.py", "consul_emulator.py", "keeper_emulator.py", "emulator_http.py")
SYSTEMD_PACKAGES = ("systemd", "dbus", "libpam-systemd", "procps")
# The compose gateway is a plain Debian managed host: compose v1 and what the modules need
# (PyYAML and requests come with docker-compose) from Debian, not the venv, whose newer Docker
# SDK compose 1.29 cannot use. The docker CLI the compose executor also runs is the host's
# (a libc-only binary), mounted.
COMPOSE_PACKAGES = ("docker-compose", "python3-consul2")
SYSTEMD_USER = "edgex"
SYSTEMD_USER_UID = 1000
CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"


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


def _apt_install_line(packages):
    """A RUN line installing Debian packages with this machine's CA bundle, leaving no lists behind."""
    return ("RUN apt-get -o Acquire::https::CAInfo=/tmp/ca-bundle.crt update -qq"
            " && DEBIAN_FRONTEND=noninteractive apt-get -o Acquire::https::CAInfo=/tmp/ca-bundle.crt"
            " install -y -qq --no-install-recommends %s >/dev/null"
            " && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb /tmp/ca-bundle.crt" % " ".join(packages))


def _systemd_build_files():
    """{name in the build context: text}: the Dockerfile and what it copies."""
    from tests.testbed import systemd_units

    files = {}
    lines = ["FROM %s" % standin_image(), "LABEL %s" % LABEL,
             # systemd is the command (PID 1); docker stops it with the signal it shuts down on.
             "ENTRYPOINT []", 'CMD ["/lib/systemd/systemd"]', "STOPSIGNAL SIGRTMIN+3",
             "COPY ca-bundle.crt /tmp/ca-bundle.crt", _apt_install_line(SYSTEMD_PACKAGES)]
    # Lingering: the user's manager (systemctl --user) runs from boot, without a login.
    lines.append("RUN useradd -m -u %d %s && mkdir -p /var/lib/systemd/linger && touch /var/lib/systemd/linger/%s"
                 % (SYSTEMD_USER_UID, SYSTEMD_USER, SYSTEMD_USER))
    for index, (path, text) in enumerate(sorted(systemd_units.unit_files().items())):
        name = "unit-%d" % index
        files[name] = text
        lines.append("COPY %s %s" % (name, path))
    files["environment"] = systemd_units.environment_text("gateway")
    lines.append("COPY environment %s" % systemd_units.ENVIRONMENT_FILE)
    for index, (path, text) in enumerate(sorted(systemd_units.user_unit_files(SYSTEMD_USER).items())):
        name = "user-unit-%d" % index
        files[name] = text
        lines.append("COPY --chown=%d:%d %s %s" % (SYSTEMD_USER_UID, SYSTEMD_USER_UID, name, path))
    files["Dockerfile"] = "\n".join(lines) + "\n"
    return files


def _compose_build_files():
    lines = ["FROM %s" % standin_image(), "LABEL %s" % LABEL, "ENTRYPOINT []", 'CMD ["sleep", "infinity"]',
             "COPY ca-bundle.crt /tmp/ca-bundle.crt", _apt_install_line(COMPOSE_PACKAGES)]
    return {"Dockerfile": "\n".join(lines) + "\n"}


def _build_cached(repository, files, what):
    """Build the image of ``files`` (a Dockerfile and what it copies) once; tagged by their hash."""
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(name.encode() + b"\0" + files[name].encode() + b"\0")
    tag = "%s:%s" % (repository, digest.hexdigest()[:12])
    if image_exists(tag):
        return tag
    # The build's containers carry the test-bed label (from the base image): hold the test-bed lock,
    # or a `testbed.py down` elsewhere kills the RUN step (exit 137).
    from tests.testbed.testbed import Lock

    with Lock():
        return _build(repository, tag, files, what)


def _build(repository, tag, files, what):
    if image_exists(tag):  # built by someone else while we waited for the lock
        return tag
    context = tempfile.mkdtemp(prefix="%s-" % repository)
    try:
        for name, text in files.items():
            with open(os.path.join(context, name), "w") as handle:
                handle.write(text)
        shutil.copy(CA_BUNDLE if os.path.exists(CA_BUNDLE) else os.devnull, os.path.join(context, "ca-bundle.crt"))
        log("building %s (%s)" % (tag, what))
        # Host network: the build container reaches the Debian mirror as the host does (no bridge here).
        run(["docker", "build", "-q", "--network", "host", "-t", tag, context], stdout=subprocess.DEVNULL,
            env=dict(os.environ, DOCKER_BUILDKIT="0"))
    finally:
        shutil.rmtree(context, ignore_errors=True)
    prune_old(repository, keep=tag)
    return tag


def systemd_image():
    """The systemd gateway image tag, built if missing (seconds to a minute once, then cached)."""
    return _build_cached("edgex-systemd-gateway", _systemd_build_files(),
                         "apt-get install %s" % " ".join(SYSTEMD_PACKAGES))


def compose_gateway_image():
    """A gateway that runs compose v1 (Debian's docker-compose 1.29.2) against the engine's socket."""
    return _build_cached("edgex-compose-gateway", _compose_build_files(),
                         "apt-get install %s" % " ".join(COMPOSE_PACKAGES))


def prune_old(repository, keep):
    """Remove older stand-in tags this checkout built that no container uses."""
    listed = subprocess.run(["docker", "images", repository, "--filter", "label=%s=%s" % (SOURCE_LABEL, HERE),
                             "--format", "{{.Repository}}:{{.Tag}}"], capture_output=True, text=True).stdout.split()
    for tag in listed:
        if tag != keep:
            subprocess.run(["docker", "rmi", tag], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


if __name__ == "__main__":
    builders = {"standin": standin_image, "systemd": systemd_image, "compose-gateway": compose_gateway_image}
    print(builders[sys.argv[1] if sys.argv[1:] else "standin"]())
