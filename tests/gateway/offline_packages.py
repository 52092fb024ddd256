"""What an offline gateway installs from, for the gateway_prereqs molecule scenario:

    .venv/bin/python tests/gateway/offline_packages.py   print "<apt repository dir> <wheelhouse dir>"

- a flat apt repository (the .debs and a Packages index) of the Debian packages the role
  installs, with every dependency the test-bed's Debian base lacks, fetched once by apt in a
  container of that base (host network, Debian's mirror) and indexed by apt-ftparchive there;
- a wheelhouse of meta/gateway-requirements.txt (binary wheels for the gateways' Python 3.11).

The molecule gateways have no network (network_mode none): they get both directories mounted
read-only, as a site's local mirror would serve them. Cached under tests/testbed/.cache/ by a
hash of the package lists.
"""

import hashlib
import os
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, REPO)

from tests.testbed.images import CACHE, base_image  # noqa: E402
from tests.testbed.testbed import Lock  # noqa: E402

# The role's apt packages (both methods), and python3-apt, which its apt module needs.
DEBS = ("python3-consul2", "python3-docker", "python3-yaml", "python3-venv", "python3-packaging", "python3-apt")
REQUIREMENTS = os.path.join(REPO, "meta", "gateway-requirements.txt")


def log(message):
    sys.stderr.write("offline-packages: %s\n" % message)
    sys.stderr.flush()


def apt_repository(base):
    key = hashlib.sha256(("%s|%s" % (base, " ".join(DEBS))).encode()).hexdigest()[:12]
    target = os.path.join(CACHE, "gateway-debs-%s" % key)
    if os.path.exists(os.path.join(target, "Packages")):
        return target
    work = target + ".tmp"
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    # Download first (so the list holds what the base lacks), then install apt-utils in the
    # throw-away container to index the directory.
    script = ("set -e; export DEBIAN_FRONTEND=noninteractive; apt-get update -qq; "
              "apt-get install -qq --download-only --no-install-recommends -y %s >/dev/null; "
              "cp /var/cache/apt/archives/*.deb /out/; "
              "apt-get install -qq --no-install-recommends -y apt-utils >/dev/null; "
              "cd /out && apt-ftparchive packages . > Packages; chown -R %d:%d /out"
              % (" ".join(DEBS), os.getuid(), os.getgid()))
    log("fetching %s with apt (once)" % " ".join(DEBS))
    # The base carries the test-bed label: `testbed.py down` must not remove this container midway.
    with Lock():
        subprocess.run(["docker", "run", "--rm", "--pull", "never", "--network", "host", "-v", "%s:/out" % work,
                        base, "sh", "-c", script], check=True)
    os.replace(work, target)
    return target


def wheelhouse():
    with open(REQUIREMENTS, "rb") as handle:
        key = hashlib.sha256(handle.read()).hexdigest()[:12]
    target = os.path.join(CACHE, "gateway-wheels-%s" % key)
    if os.path.isdir(target) and os.listdir(target):
        return target
    work = target + ".tmp"
    shutil.rmtree(work, ignore_errors=True)
    log("downloading the wheels of %s (once)" % os.path.relpath(REQUIREMENTS, REPO))
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--only-binary=:all:", "-d", work,
                    "-r", REQUIREMENTS], check=True)
    os.replace(work, target)
    return target


if __name__ == "__main__":
    print(apt_repository(base_image()), wheelhouse())
