"""Build the sample execution environment (extensions/ee/) here, as a user would, and print its tag.

    .venv/bin/python tests/ee/build.py     build (or reuse) edgex-ee:<hash>, print the tag

No image can be pulled on this machine, so the definition users get is built with four
test-only changes, and nothing else:
- the base image is the test-bed's Debian bookworm base (tests/testbed/images.py), not
  docker.io/library/debian:bookworm-slim (the sample's own prepend_base adds python3-pip to it);
- the collection comes from a tarball of this checkout (no Galaxy server), installed --offline;
- the build reaches PyPI and Debian's mirror through the host's network (`--network host`);
- pip inside the build trusts this machine's CA bundle and gets its index settings: both are
  copied into the build context and into the base stage as /etc/pip.conf and a CA file, which
  the last stage deletes (no ENV is set: nothing of this machine's configuration stays in effect
  in the image).

The tag is a hash of everything that goes into the image (the definition, this script, the
collection's files as the tarball lists them, the base image, builder's version), so a second
run takes a second, as for the stand-in image.
"""

import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, REPO)

from tests.testbed.images import HERE as TESTBED, LABEL, SOURCE_LABEL, base_image, image_exists, prune_old  # noqa: E402
from tests.testbed.testbed import Lock  # noqa: E402

DEFINITION = os.path.join(REPO, "extensions", "ee", "execution-environment.yml")
REPOSITORY = "edgex-ee"
CA_BUNDLE = os.environ.get("EDGEX_BUILD_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt")
CA_IN_BUILD = "/etc/ssl/certs/edgex-build-ca.crt"
PIP_CONF = "/etc/pip.conf"


def log(message):
    sys.stderr.write("ee: %s\n" % message)
    sys.stderr.flush()


def venv_bin(name):
    return os.path.join(os.path.dirname(sys.executable), name)


def build_collection(directory):
    out = subprocess.run([venv_bin("ansible-galaxy"), "collection", "build", "--force", "--output-path", directory,
                          REPO], check=True, capture_output=True, text=True).stdout
    tarballs = [name for name in os.listdir(directory) if name.endswith(".tar.gz")]
    if len(tarballs) != 1:
        raise SystemExit("ee: ansible-galaxy collection build made %r: %s" % (tarballs, out))
    return os.path.join(directory, tarballs[0])


def collection_digest(tarball):
    """MANIFEST.json and FILES.json list every file with its sha256 and no mtime: the content."""
    digest = hashlib.sha256()
    with tarfile.open(tarball) as archive:
        for name in ("MANIFEST.json", "FILES.json"):
            digest.update(archive.extractfile(name).read())
    return digest.hexdigest()


def pip_config():
    """/etc/pip.conf for the build: this machine's CA bundle, and the pip settings that mean
    something inside a container (http(s) indexes, the timeout). Local paths (find-links, file://
    indexes, the constraint file) are this machine's disk and do not exist in the build."""
    listed = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True,
                            check=True).stdout
    found = {}
    for line in listed.splitlines():
        key, _sep, value = line.partition("=")
        found[key.rsplit(".", 1)[-1]] = value.strip().strip("'\"")
    for option, env in (("index-url", "PIP_INDEX_URL"), ("extra-index-url", "PIP_EXTRA_INDEX_URL"),
                        ("timeout", "PIP_DEFAULT_TIMEOUT"), ("default-timeout", "PIP_DEFAULT_TIMEOUT")):
        if os.environ.get(env):
            found[option] = os.environ[env]
    lines = ["[global]", "cert = %s" % CA_IN_BUILD]
    for option in ("index-url", "extra-index-url"):
        urls = [url for url in found.get(option, "").split() if url.startswith(("http://", "https://"))]
        if urls:
            lines.append("%s = %s" % (option, " ".join(urls)))
    timeout = found.get("default-timeout") or found.get("timeout")
    if timeout:
        lines.append("timeout = %s" % timeout)
    return "\n".join(lines) + "\n"


def test_definition(base, tarball_name):
    """The sample definition with the test-only changes listed in the module docstring."""
    with open(DEFINITION) as handle:
        definition = yaml.safe_load(handle)
    definition["images"]["base_image"]["name"] = base
    definition["dependencies"]["galaxy"] = {"collections": [{"name": "collections/" + tarball_name, "type": "file"}]}
    definition.setdefault("build_arg_defaults", {})["ANSIBLE_GALAXY_CLI_COLLECTION_OPTS"] = "--offline"
    definition["options"].pop("tags", None)
    definition["additional_build_files"] = definition.get("additional_build_files", []) + [
        {"src": "collections", "dest": "collections"},
        {"src": "build", "dest": "build"},
    ]
    steps = definition.setdefault("additional_build_steps", {})
    # Every later stage starts FROM base, so they all see these two files.
    steps["prepend_base"] = ["COPY _build/build/build-ca.crt %s" % CA_IN_BUILD,
                             "COPY _build/build/pip.conf %s" % PIP_CONF] + steps.get("prepend_base", [])
    # Last: nothing of this machine's configuration is left visible in the image; the test-bed
    # labels say whose image it is (the source label: prune_old removes only this checkout's tags).
    steps["append_final"] = steps.get("append_final", []) + [
        "RUN rm -f %s %s" % (CA_IN_BUILD, PIP_CONF), "LABEL %s %s=%s" % (LABEL, SOURCE_LABEL, TESTBED)]
    return definition


def image_tag(base, collection):
    digest = hashlib.sha256()
    for path in (DEFINITION, os.path.abspath(__file__)):
        with open(path, "rb") as handle:
            digest.update(handle.read())
    digest.update(base.encode())
    digest.update(collection.encode())
    builder = subprocess.run([venv_bin("ansible-builder"), "--version"], capture_output=True, text=True,
                             check=True).stdout
    digest.update(builder.strip().encode())
    return "%s:%s" % (REPOSITORY, digest.hexdigest()[:12])


def ee_image():
    """The execution environment's tag, built if missing (a few minutes once, then seconds)."""
    base = base_image()
    work = tempfile.mkdtemp(prefix="edgex-ee-")
    try:
        os.makedirs(os.path.join(work, "collections"))
        tarball = build_collection(os.path.join(work, "collections"))
        tag = image_tag(base, collection_digest(tarball))
        if image_exists(tag):
            return tag
        os.makedirs(os.path.join(work, "build"))
        shutil.copy(CA_BUNDLE, os.path.join(work, "build", "build-ca.crt"))
        with open(os.path.join(work, "build", "pip.conf"), "w") as handle:
            handle.write(pip_config())
        definition = os.path.join(work, "execution-environment.yml")
        with open(definition, "w") as handle:
            yaml.safe_dump(test_definition(base, os.path.basename(tarball)), handle, sort_keys=False)
        argv = [venv_bin("ansible-builder"), "build", "-f", definition, "-c", os.path.join(work, "context"),
                "-t", tag, "--container-runtime", "docker", "-v", "2",
                "--extra-build-cli-args", "--network host"]
        log("building %s from %s (ansible-builder; a few minutes once)" % (tag, base))
        # The base image carries the test-bed label, and so does every container of the build:
        # `testbed.py down` (which removes labelled containers) must not run meanwhile.
        with Lock():
            completed = subprocess.run(argv, cwd=work, capture_output=True, text=True, check=False,
                                       env=dict(os.environ, DOCKER_BUILDKIT="0"))
        if completed.returncode != 0:
            sys.stderr.write(completed.stdout[-12000:] + completed.stderr[-4000:])
            raise SystemExit("ee: ansible-builder build failed (exit %d)" % completed.returncode)
        prune_old(REPOSITORY, keep=tag)
        return tag
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    print(ee_image())
