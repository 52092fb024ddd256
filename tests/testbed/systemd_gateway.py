"""The systemd gateway: a container with systemd as PID 1 running the EdgeX stand-ins as units.

    container = start_gateway("edgex-sd-gw", node="sdgw")   # systemd up, registry unit started
    systemctl(container, "start", "edgex-core-data.service")
    show(container, "edgex-core-data.service", "ActiveState", "NRestarts")
    remove_gateway(container)

Run as ``docker run <image>`` with ``/lib/systemd/systemd`` as the command, the host's cgroup
tree mounted read-only, ``/run`` and ``/run/lock`` as tmpfs and ``container=docker`` (no
``--privileged``: this engine refuses it). Its own network namespace (``--network none``):
the registry and the stand-ins answer on the gateway's 127.0.0.1 only, so nothing collides
with the docker gateways on the host's loopback. The collection's modules run inside it with
Debian's python3, the venv's libraries (mounted at /opt/edgex-python) and, for tests that
call module_utils directly, this checkout (mounted at /opt/edgex-collections).
"""

import os
import subprocess
import sys
import sysconfig
import time

if __name__ == "__main__":  # run as a script (make demo): make the checkout importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from tests.testbed import systemd_units  # noqa: E402
from tests.testbed.images import LABEL, REPO, SYSTEMD_USER, SYSTEMD_USER_UID, systemd_image  # noqa: E402

SITE_PACKAGES_MOUNT = "/opt/edgex-python"
COLLECTIONS_MOUNT = "/opt/edgex-collections"
PYTHONPATH = "%s:%s" % (SITE_PACKAGES_MOUNT, COLLECTIONS_MOUNT)


def venv_site_packages():
    return sysconfig.get_paths()["purelib"]


def docker(*argv, check=True, user=None, input_text=None, timeout=120):
    result = subprocess.run(["docker"] + list(argv), capture_output=True, text=True, input=input_text,
                            timeout=timeout)
    if check and result.returncode != 0:
        raise RuntimeError("docker %s failed (%d): %s" % (" ".join(argv[:4]), result.returncode,
                                                           (result.stderr or result.stdout).strip()))
    return result


def exec_in(container, argv, user=None, check=True, env=None, input_text=None, timeout=120):
    """Run argv inside the gateway (as root, or ``user``); returns the CompletedProcess."""
    command = ["exec", "-i"] if input_text is not None else ["exec"]
    if user:
        command += ["-u", user]
    for key, value in (env or {}).items():
        command += ["-e", "%s=%s" % (key, value)]
    return docker(*(command + [container] + list(argv)), check=check, input_text=input_text, timeout=timeout)


def write_file(container, path, text):
    exec_in(container, ["sh", "-c", 'mkdir -p "$(dirname "$1")" && cat > "$1"', "sh", path], input_text=text)


def systemctl(container, *args, check=True, user=False):
    if user:
        return exec_in(container, ["systemctl", "--user"] + list(args), user=SYSTEMD_USER, check=check,
                       env={"XDG_RUNTIME_DIR": "/run/user/%d" % SYSTEMD_USER_UID})
    return exec_in(container, ["systemctl"] + list(args), check=check)


def show(container, unit, *properties):
    """{property: value} from the real ``systemctl show``."""
    out = systemctl(container, "show", unit, "--property=" + ",".join(properties)).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def wait_until(predicate, timeout=30.0, interval=0.1, what="condition"):
    deadline = time.time() + timeout
    value = None
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise RuntimeError("timed out after %.0fs waiting for %s (last: %r)" % (timeout, what, value))


def run_container(name, image, command=None, network="none", labels=None, entrypoint=None):
    """A container of the systemd image, systemd as PID 1 unless ``command`` says otherwise."""
    docker("rm", "-f", name, check=False)
    argv = ["run", "-d", "--pull", "never", "--name", name, "--hostname", name, "--network", network,
            "--label", LABEL, "--label", "edgex.gateway=%s" % name,
            "-v", "/sys/fs/cgroup:/sys/fs/cgroup:ro", "--tmpfs", "/run", "--tmpfs", "/run/lock",
            "-e", "container=docker", "-e", "PYTHONPATH=%s" % PYTHONPATH,
            "-v", "%s:%s:ro" % (venv_site_packages(), SITE_PACKAGES_MOUNT),
            "-v", "%s:%s/ansible_collections/edgex/sysmgmt:ro" % (REPO, COLLECTIONS_MOUNT)]
    for key, value in (labels or {}).items():
        argv += ["--label", "%s=%s" % (key, value)]
    if entrypoint:
        argv += ["--entrypoint", entrypoint]
    docker(*(argv + [image] + list(command or [])))
    return name


def system_state(container):
    return exec_in(container, ["systemctl", "is-system-running"], check=False).stdout.strip()


def start_gateway(name, node, check_interval="1s", image=None, start_registry=True):
    """Boot the gateway, set its node name, start the registry unit; returns the container name."""
    image = image or systemd_image()
    run_container(name, image)
    # "degraded" would mean a unit of the base system failed: that is a broken image, not a test-bed.
    wait_until(lambda: system_state(name) in ("running", "degraded"), what="systemd in %s to boot" % name)
    state = system_state(name)
    if state != "running":
        failed = systemctl(name, "--failed", "--no-legend", check=False).stdout
        raise RuntimeError("systemd in %s is %s: %s" % (name, state, failed.strip()))
    write_file(name, systemd_units.ENVIRONMENT_FILE, systemd_units.environment_text(node, check_interval))
    if start_registry:
        systemctl(name, "start", systemd_units.unit_name("consul"))
        wait_until(lambda: registry_answers(name), what="the registry unit in %s to answer" % name)
    return name


def registry_answers(container):
    probe = ("import urllib.request as u; u.urlopen('http://127.0.0.1:%d/v1/status/leader', timeout=1)"
             % systemd_units.REGISTRY_PORT)
    return exec_in(container, ["python3", "-c", probe], check=False).returncode == 0


def run_python(container, code, user=None, env=None):
    """Run Python code with the gateway's python3 and the collection importable."""
    return exec_in(container, ["python3", "-c", code], user=user, check=False, env=env)


def remove_gateway(name):
    docker("rm", "-f", name, check=False)


MANIFEST = "/etc/edgex/manifest.yml"


def up(name, node):
    """A gateway with its manifest at MANIFEST (make demo); ``testbed.py down`` removes it."""
    import yaml

    from tests.testbed.testbed import Lock

    with Lock():
        start_gateway(name, node=node)
        write_file(name, MANIFEST, yaml.safe_dump(systemd_units.manifest(node), sort_keys=False))
    return name


def main(argv=None):
    import argparse

    parser = argparse.ArgumentParser(description="the test-bed's systemd gateway")
    sub = parser.add_subparsers(dest="command", required=True)
    start = sub.add_parser("up", help="boot a systemd gateway (registry unit started, its manifest written)")
    start.add_argument("--name", default="edgex-systemd-gw")
    start.add_argument("--node", default="sdgw")
    args = parser.parse_args(argv)
    print(up(args.name, args.node))
    return 0


if __name__ == "__main__":
    sys.exit(main())
