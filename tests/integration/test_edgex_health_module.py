"""edgex.sysmgmt.edgex_health through ansible-playbook, against Consul and stand-in EdgeX services."""

import json
import time

from tests.integration.playbook import finish_play, run_play, start_play
from tests.testbed.fixtures_consul import free_port
from tests.testbed.fixtures_docker import wait_until


def task(**module_args):
    lines = "".join("        %s: %s\n" % (k, json.dumps(v)) for k, v in module_args.items())
    return "    - edgex.sysmgmt.edgex_health:\n%s" % lines


def consul_args(consul, **extra):
    args = {"host": consul.host, "port": consul.port}
    if consul.token:
        args["token"] = consul.token
    args.update(extra)
    return args


def health_status(consul, name):
    """Consul's aggregated status of ``name`` (None while it is not registered)."""
    _index, entries = consul.client().health.service(name)
    if not entries:
        return None
    statuses = [check["Status"] for entry in entries for check in entry["Checks"]]
    for status in ("critical", "warning"):
        if status in statuses:
            return status
    return "passing"


def by_name(result):
    return {s["name"]: s for s in result["services"]}


def start_fleet(consul, local_standin):
    """core-data healthy, core-metadata hung, core-command answering 500, support-notifications
    crashed without deregistering; returns once Consul has judged all of them."""
    standins = {}
    for name, env in (("core-data", {}), ("core-metadata", {"STANDIN_PING_HANG": "1"}),
                      ("core-command", {"STANDIN_PING_STATUS": "500"}),
                      ("support-notifications", {"STANDIN_CRASH_AFTER": "1.5", "STANDIN_CRASH_NO_DEREGISTER": "1"})):
        standins[name] = local_standin(name, free_port(), env=env, registry="consul", registry_port=consul.port)
    wait_until(lambda: standins["support-notifications"].process.poll() is not None, what="the crash")
    expected = {"core-data": "passing", "core-metadata": "critical", "core-command": "critical",
                "support-notifications": "critical"}
    wait_until(lambda: {n: health_status(consul, n) for n in expected} == expected, timeout=30,
               what="Consul's checks to settle")
    return standins


# A registry timeout far longer than the probe's, so that which of the two bounded a hung ping shows
# in the run time whatever the machine's load.
REGISTRY_TIMEOUT = 20.0


def timed_play(tmp_path, tasks_yaml):
    started = time.monotonic()
    play = run_play(tmp_path, tasks_yaml)
    return play, time.monotonic() - started


def test_verdicts_for_healthy_hung_500_and_crashed(consul, local_standin, tmp_path):
    standins = start_fleet(consul, local_standin)
    names = sorted(standins)
    # The same run with the healthy service only: what a run costs here and now.
    reference, reference_took = timed_play(tmp_path, task(name=["core-data"], probe_timeout=1.0, fail_on="never",
                                                          **consul_args(consul, timeout=REGISTRY_TIMEOUT)))
    assert reference.returncode == 0, reference.stdout + reference.stderr
    play, took = timed_play(tmp_path, task(name=names, probe_timeout=1.0, fail_on="never",
                                           **consul_args(consul, timeout=REGISTRY_TIMEOUT)))
    assert play.returncode == 0, play.stdout + play.stderr
    result = play.task()
    services = by_name(result)
    assert result["changed"] is False and result["source"] == "consul" and result["manifest_age"] is None
    assert services["core-data"]["verdict"] == "healthy" and services["core-data"]["reasons"] == []
    assert services["core-data"]["port"] == standins["core-data"].port
    assert services["core-data"]["http_status"] == 200 and services["core-data"]["latency_ms"] > 0
    assert services["core-data"]["registry_status"] == "passing"
    assert services["core-metadata"]["verdict"] == "unhealthy"
    assert services["core-metadata"]["reasons"] == ["ping timed out after 1.0s", "Consul check 'core-metadata' critical"]
    assert services["core-command"]["verdict"] == "unhealthy"
    assert services["core-command"]["reasons"] == ["ping answered 500", "Consul check 'core-command' critical"]
    crashed = services["support-notifications"]
    assert crashed["verdict"] == "unhealthy" and crashed["registry_status"] == "critical"
    assert crashed["reasons"] == ["ping failed: connection refused", "Consul check 'support-notifications' critical"]
    assert {c["id"] for c in crashed["checks"]} >= {"serfHealth", "support-notifications"}
    assert result["summary"] == {"healthy": 1, "degraded": 0, "unhealthy": 3, "unknown": 0, "total": 4}
    assert result["unhealthy"] == ["core-command", "core-metadata", "support-notifications"]
    # One hung ping costs one probe_timeout (1 s), not a registry timeout (20 s).
    assert took - reference_took < REGISTRY_TIMEOUT / 2, (took, reference_took)

    failed = run_play(tmp_path, task(name=names, probe_timeout=1.0, **consul_args(consul)))
    assert failed.returncode != 0
    failure = failed.task()
    assert failure["failed"] is True
    assert failure["msg"].startswith("3 of 4 services unhealthy: ")
    assert "core-command on gw1: ping answered 500" in failure["msg"]
    assert "core-data" not in failure["msg"]
    assert failure["summary"]["unhealthy"] == 3  # the results come with the failure


def test_all_includes_consul_itself_and_node_scoping(consul, local_standin, tmp_path):
    standin = local_standin("core-data", free_port(), registry="consul", registry_port=consul.port).wait()
    wait_until(lambda: health_status(consul, "core-data") == "passing", what="core-data passing")
    result = run_play(tmp_path, task(node=["gw1"], **consul_args(consul))).task()
    services = by_name(result)
    assert services["core-data"]["verdict"] == "healthy" and services["core-data"]["port"] == standin.port
    if consul.is_emulator:
        assert services["consul"]["verdict"] == "healthy" and services["consul"]["probe"] == "consul-leader"
    unknown_node = run_play(tmp_path, task(node=["gw-nowhere"], **consul_args(consul))).task()
    assert unknown_node["failed"] is True
    assert unknown_node["msg"].startswith("node gw-nowhere not known to the consul registry; known nodes: ")


def test_unknown_service_names_fail_and_list_the_known_ones(consul, local_standin, tmp_path):
    local_standin("core-data", free_port(), registry="consul", registry_port=consul.port).wait()
    wait_until(lambda: health_status(consul, "core-data"), what="core-data registered")
    result = run_play(tmp_path, task(name=["core-data", "device-nowhere"], **consul_args(consul))).task()
    assert result["failed"] is True
    assert "unknown service device-nowhere in the consul registry; known: " in result["msg"]
    assert "core-data" in result["msg"].split("known: ")[1]
    assert "services" not in result  # nothing was probed


def test_ping_ok_but_node_down_is_degraded_and_fail_on_decides(consul, local_standin, tmp_path):
    local_standin("core-data", free_port(), registry="consul", registry_port=consul.port).wait()
    wait_until(lambda: health_status(consul, "core-data") == "passing", what="core-data passing")
    consul.fail_node("gw1")  # skips on a real Consul
    args = consul_args(consul, name=["core-data"])

    tolerated = run_play(tmp_path, task(**args))  # fail_on: unhealthy (default)
    assert tolerated.returncode == 0, tolerated.stdout + tolerated.stderr
    service = tolerated.task()["services"][0]
    assert service["verdict"] == "degraded" and "node serfHealth critical" in service["reasons"]

    strict = run_play(tmp_path, task(fail_on="degraded", **args)).task()
    assert strict["failed"] is True
    assert strict["msg"].startswith("1 of 1 services unhealthy or degraded: core-data on gw1: ")
    assert "node serfHealth critical" in strict["msg"]

    check_mode = run_play(tmp_path, task(fail_on="never", **args), check=True).task()
    assert check_mode["changed"] is False and check_mode["summary"]["degraded"] == 1


def catalog_reads(consul):
    return consul.stats()["by_path"].get("/v1/catalog/services", 0)


def test_wait_for_healthy_rides_out_a_slow_start(consul, local_standin, tmp_path):
    # It starts (listens and registers) only once the module has looked at the catalog twice, so
    # its first check found nothing: the test decides that, not the clock. The emulator counts the
    # module's requests; on a real Consul this test skips.
    port = free_port()
    consul.reset_stats()
    wait_timeout = 120
    play = start_play(tmp_path, task(name=["core-data"], wait_for="healthy", wait_timeout=wait_timeout,
                                     probe_timeout=1.0, **consul_args(consul)))
    try:
        wait_until(lambda: catalog_reads(consul) >= 2 or play.poll() is not None, timeout=wait_timeout,
                   what="the module's second look at the catalog")
    except AssertionError:
        play.kill()
        raise
    local_standin("core-data", port, registry="consul", registry_port=consul.port)
    play = finish_play(play)
    assert play.returncode == 0, play.stdout + play.stderr
    result = play.task()
    assert result["services"][0]["verdict"] == "healthy" and result["services"][0]["port"] == port
    assert 0 < result["waited"] < wait_timeout
    assert result["attempts"] and result["attempts"][0]["not_healthy"] == ["core-data"]
    assert result["attempts"][0]["summary"]["unknown"] == 1  # not registered yet at first


def test_wait_for_healthy_gives_up_naming_the_services(consul, local_standin, tmp_path):
    local_standin("core-metadata", free_port(), env={"STANDIN_PING_HANG": "1"}, registry="consul",
                  registry_port=consul.port).wait()
    local_standin("core-data", free_port(), registry="consul", registry_port=consul.port).wait()
    wait_until(lambda: health_status(consul, "core-metadata") and health_status(consul, "core-data") == "passing",
               what="both registered")
    # One check without waiting: what a run costs here and now.
    reference, reference_took = timed_play(tmp_path, task(name=["core-data", "core-metadata"], probe_timeout=0.5,
                                                          fail_on="never", **consul_args(consul)))
    assert reference.returncode == 0, reference.stdout + reference.stderr
    play, took = timed_play(tmp_path, task(name=["core-data", "core-metadata"], wait_for="healthy", wait_timeout=2,
                                           probe_timeout=0.5, **consul_args(consul)))
    hung = play.task()
    assert hung["failed"] is True
    assert hung["msg"].startswith("not healthy after waiting 2.0s: core-metadata on gw1: ping timed out after 0.5s")
    assert "core-data" not in hung["msg"]
    assert hung["not_healthy"] == ["core-metadata"] and hung["waited"] >= 2
    assert hung["attempts"] and hung["attempts"][0]["not_healthy"] == ["core-metadata"]
    # It gave up at the deadline: no retry was planned past it (the attempts' times are the module's
    # own, counted from a moment just before its deadline was set, and rounded), and after the last
    # pause came one more check, about as long as the first.
    last = hung["attempts"][-1]
    assert last["elapsed"] + last["retry_in"] <= 2.0 + 0.25
    first_check, final_check = hung["attempts"][0]["elapsed"], hung["waited"] - (last["elapsed"] + last["retry_in"])
    assert final_check < 2 * first_check + 1.0, (first_check, final_check)
    # And the play around the module cost about what a plain run costs.
    assert took - hung["waited"] < 2 * reference_took + 1.0, (took, hung["waited"], reference_took)

    # A service that never comes up is named too (its stand-in would listen after an hour).
    local_standin("device-virtual", free_port(), env={"STANDIN_START_DELAY": "3600"}, registry="consul",
                  registry_port=consul.port)
    never = run_play(tmp_path, task(name=["device-virtual"], wait_for="healthy", wait_timeout=2,
                                    **consul_args(consul))).task()
    assert never["failed"] is True
    assert never["msg"].startswith("after waiting 2.0s, unknown service device-virtual in the consul registry")
    assert never["services"][0]["reasons"] == ["not registered"]

    reported = run_play(tmp_path, task(name=["core-metadata"], wait_for="healthy", wait_timeout=1, probe_timeout=0.5,
                                       fail_on="never", **consul_args(consul)))
    assert reported.returncode == 0 and reported.task()["not_healthy"] == ["core-metadata"]


def test_acl_denied_is_a_clear_error_without_the_token(consul_acl, tmp_path):
    play = run_play(tmp_path, task(token="s3cret-wrong-token", host=consul_acl.host, port=consul_acl.port))
    assert play.returncode != 0
    result = play.task()
    assert result["failed"] is True
    assert "403" in result["msg"] and "refused" in result["msg"]
    assert "fallback_on_auth_error" in result["msg"]
    assert "s3cret-wrong-token" not in play.stdout + play.stderr


def test_consul_down_probes_what_the_manifest_lists(local_standin, tmp_path):
    standin = local_standin("core-data", free_port()).wait()
    manifest = tmp_path / "manifest.yml"
    manifest.write_text(
        'version: 1\nupdated_at: "2026-01-01T00:00:00Z"\nhosts:\n  gw1:\n    address: 127.0.0.1\n    services:\n'
        '      core-data: {executor: docker, target: edgex-core-data, port: %d}\n'
        '      core-metadata: {executor: docker, target: edgex-core-metadata, port: %d}\n' % (standin.port, free_port()))
    play = run_play(tmp_path, task(host="127.0.0.1", port=free_port(), timeout=1, manifest_path=str(manifest),
                                   fail_on="never"))
    assert play.returncode == 0, play.stdout + play.stderr
    result = play.task()
    assert result["source"] == "manifest" and result["manifest_age"] > 3600
    assert any("consul registry unreachable" in w for w in result["warnings"])
    services = by_name(result)
    # No live registry: the ping alone decides.
    assert services["core-data"]["verdict"] == "healthy" and services["core-data"]["registry_status"] == "unknown"
    assert services["core-metadata"]["reasons"] == ["ping failed: connection refused"]
