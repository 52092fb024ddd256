"""The systemd gateway as a pytest fixture: systemd as PID 1 in a container, the EdgeX stand-ins
as units, the collection's modules run inside it through the community.docker.docker connection.
"""

import json

import pytest
import yaml

from tests.testbed import systemd_gateway, systemd_units
from tests.testbed.testbed import Lock

GATEWAY_CONTAINER = "edgex-sdtest-gw"
NODE = "sdgw"
MANIFEST = "/etc/edgex/manifest.yml"


class SystemdGateway(object):
    def __init__(self, container, node, tmp_path):
        self.container = container
        self.node = node
        self.tmp_path = tmp_path

    # --- what systemd itself says -----------------------------------------------------------
    def show(self, service, *properties):
        return systemd_gateway.show(self.container, systemd_units.unit_name(service), *properties)

    def active(self, service):
        return self.show(service, "ActiveState")["ActiveState"]

    def entered_active(self, service):
        """When the unit last became active, on systemd's monotonic clock (us)."""
        return int(self.show(service, "ActiveEnterTimestampMonotonic")["ActiveEnterTimestampMonotonic"])

    def stop_jobs_done(self, service):
        """Monotonic times (us) of systemd's "stopped" job completions for the unit, from the journal.
        systemd forgets an inactive unit's timestamps (it unloads the unit), the journal keeps them."""
        out = systemd_gateway.exec_in(self.container, [
            "journalctl", "_PID=1", "UNIT=%s" % systemd_units.unit_name(service), "JOB_TYPE=stop", "JOB_RESULT=done",
            "-o", "json", "--no-pager"]).stdout
        return [int(json.loads(line)["__MONOTONIC_TIMESTAMP"]) for line in out.splitlines() if line.strip()]

    def stopped_at(self, services, count=1):
        """{service: when its ``count``-th stop job completed}; waits (bounded) for journald to have them."""
        def read():
            done = {s: self.stop_jobs_done(s) for s in services}
            return done if all(len(times) >= count for times in done.values()) else None
        done = systemd_gateway.wait_until(read, timeout=10, what="the stop jobs in the journal")
        return {s: times[count - 1] for s, times in done.items()}

    def systemctl(self, *args, check=True):
        return systemd_gateway.systemctl(self.container, *args, check=check)

    def set_fault(self, service, **environment):
        """A runtime drop-in (gone at reboot) giving the stand-in fault knobs; {} removes it."""
        unit = systemd_units.unit_name(service)
        path = "/run/systemd/system/%s.d/fault.conf" % unit
        if environment:
            lines = ["[Service]"] + ["Environment=%s=%s" % item for item in sorted(environment.items())]
            systemd_gateway.write_file(self.container, path, "\n".join(lines) + "\n")
        else:
            systemd_gateway.exec_in(self.container, ["rm", "-f", path])
        self.systemctl("daemon-reload")

    def python(self, code, user=None, env=None):
        return systemd_gateway.run_python(self.container, code, user=user, env=env)

    # --- the collection's modules, run inside the gateway -----------------------------------
    def module(self, module_name, check=False, diff=False, user=None, **args):
        """Run edgex.sysmgmt.<name> inside the gateway; returns (task result, PlayResult)."""
        from tests.integration.playbook import run_play

        inventory = self.tmp_path / "gateway.ini"
        host_vars = ["ansible_connection=community.docker.docker", "ansible_host=%s" % self.container,
                     "ansible_python_interpreter=/usr/bin/python3"]
        if user:
            host_vars.append("ansible_user=%s" % user)
        inventory.write_text("%s %s\n" % (self.node, " ".join(host_vars)))
        tasks = "    - edgex.sysmgmt.%s: %s\n" % (module_name, json.dumps(args))
        play = run_play(self.tmp_path, tasks, inventory=str(inventory), hosts=self.node, connection=None,
                        check=check, diff=diff)
        assert play.json is not None, play.stdout[-3000:] + play.stderr[-3000:]
        return play.task(host=self.node), play

    def service(self, check=False, diff=False, user=None, **args):
        options = {"node": self.node, "executor": "systemd", "registry_type": "consul", "host": "127.0.0.1",
                   "port": systemd_units.REGISTRY_PORT, "manifest_path": MANIFEST, "wait_timeout": 30,
                   "stop_timeout": 5}
        options.update(args)
        return self.module("edgex_service", check=check, diff=diff, user=user, **options)


@pytest.fixture
def systemd_gateway_factory(docker_engine, tmp_path):
    """Factory: a fresh systemd gateway (registry unit started, every other unit stopped), removed
    at teardown. Holds the test-bed lock while it exists."""
    made = []
    with Lock():
        def make(container=GATEWAY_CONTAINER, node=NODE):
            systemd_gateway.start_gateway(container, node=node)
            made.append(container)
            manifest = yaml.safe_dump(systemd_units.manifest(node), sort_keys=False)
            systemd_gateway.write_file(container, MANIFEST, manifest)
            return SystemdGateway(container, node, tmp_path)

        try:
            yield make
        finally:
            for container in made:
                systemd_gateway.remove_gateway(container)


@pytest.fixture
def systemd_gw(systemd_gateway_factory):
    return systemd_gateway_factory()
