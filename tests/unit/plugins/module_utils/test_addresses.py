"""The address rule and name lookups under the probe's deadline (issue 10 items 3 and 4, item 11's
keeper variant). Name resolution goes to a stub (socket.getaddrinfo patched): no name used here
ever reaches a real resolver, and a name the stub does not know fails the test."""

import socket
import threading
import time

import pytest

from ansible_collections.edgex.sysmgmt.plugins.module_utils._gateway import addresses
from ansible_collections.edgex.sysmgmt.plugins.module_utils._gateway.addresses import (
    Unreachable,
    reach,
    reachable_endpoints,
)
from ansible_collections.edgex.sysmgmt.plugins.module_utils._gateway.health import check_services, summary
from ansible_collections.edgex.sysmgmt.plugins.module_utils._gateway.select import Selection
from ansible_collections.edgex.sysmgmt.plugins.module_utils._net.dial import NameNotFound, ResolveTimeout, Resolver
from ansible_collections.edgex.sysmgmt.plugins.module_utils._registry.model import Discovery, NodeRecord, ServiceRecord

from ping_servers import PING, free_port

REAL_GETADDRINFO = socket.getaddrinfo
NOT_HERE = "192.0.2.10"  # TEST-NET-1: never one of this host's addresses, never connected to below


class StubDNS(object):
    """socket.getaddrinfo for the names a test declares: an address list, "nxdomain" or "hang"
    (blocks until the test ends). IP literals are parsed as the real call does, without DNS."""

    def __init__(self):
        self.names = {}
        self.asked = []
        self.in_flight = 0
        self.most_in_flight = 0
        self.release = threading.Event()
        self._lock = threading.Lock()

    def __call__(self, host, port, family=0, type=0, proto=0, flags=0):
        try:
            return REAL_GETADDRINFO(host, port, family, type, proto, flags | socket.AI_NUMERICHOST)
        except socket.gaierror:
            pass
        with self._lock:
            self.asked.append(host)
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            answer = self.names.get(host)
            if answer is None:
                raise AssertionError("a test asked for a name the stub does not know: %r" % host)
            if answer == "hang":
                self.release.wait(60)
                raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")
            if answer == "nxdomain":
                raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port or 0)) for ip in answer]
        finally:
            with self._lock:
                self.in_flight -= 1


@pytest.fixture
def dns(monkeypatch):
    stub = StubDNS()
    monkeypatch.setattr(socket, "getaddrinfo", stub)
    monkeypatch.setattr(addresses, "RESOLVER", Resolver())  # no answer cached by another test
    yield stub
    stub.release.set()


def container(name="core-data", port=59880, node="gw1", **fields):
    """A registration as EdgeX in Docker makes it: the container's host name and port."""
    return ServiceRecord(name=name, node=node, address="edgex-%s" % name, port=port, **fields)


# -- the resolver ----------------------------------------------------------------------------
def test_a_hung_lookup_ends_at_the_callers_deadline(dns):
    dns.names["edgex-core-data"] = "hang"
    resolver = Resolver()
    started = time.monotonic()
    with pytest.raises(ResolveTimeout):
        resolver.addresses("edgex-core-data", started + 0.3)
    assert time.monotonic() - started < 1.5


def test_one_lookup_per_name_and_a_bounded_number_of_hung_ones(dns):
    names = ["edgex-svc-%d.invalid" % i for i in range(40)]
    dns.names.update(dict.fromkeys(names, "hang"))
    resolver = Resolver(max_threads=4)
    deadline = time.monotonic() + 0.5
    errors = []

    def ask(name):
        try:
            resolver.addresses(name, deadline)
        except ResolveTimeout as exc:
            errors.append(exc.name)

    threads = [threading.Thread(target=ask, args=(name,)) for name in names * 3]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(errors) == sorted(names * 3)
    assert dns.most_in_flight <= 4  # hung lookups do not pile up without bound
    assert len(dns.asked) == len(set(dns.asked))  # never two lookups of one name
    # Once the hung ones return, the names nobody waits for any more are dropped, not looked up.
    dns.release.set()
    until = time.monotonic() + 5
    while not resolver._pending.empty() and time.monotonic() < until:
        time.sleep(0.01)
    time.sleep(0.05)
    assert len(dns.asked) == 4


def test_answers_are_reused_and_ip_literals_need_no_lookup(dns):
    dns.names["edgex-core-data"] = ["10.9.0.5"]
    dns.names["edgex-nothing"] = "nxdomain"
    resolver = Resolver()
    deadline = time.monotonic() + 2
    assert resolver.addresses("edgex-core-data", deadline) == [(socket.AF_INET, "10.9.0.5")]
    assert resolver.addresses("edgex-core-data", deadline) == [(socket.AF_INET, "10.9.0.5")]
    assert resolver.addresses("::1", deadline) == [(socket.AF_INET6, "::1")]
    assert resolver.addresses("[::1]", deadline) == [(socket.AF_INET6, "::1")]
    with pytest.raises(NameNotFound, match="edgex-nothing does not resolve \\(Name or service not known\\)"):
        resolver.addresses("edgex-nothing", deadline)
    assert dns.asked == ["edgex-core-data", "edgex-nothing"]


# -- the rule --------------------------------------------------------------------------------
def test_an_ip_or_a_name_that_resolves_is_used_as_registered(dns):
    dns.names["edgex-core-data"] = ["10.9.0.5"]
    deadline = time.monotonic() + 2
    by_ip = reach(ServiceRecord("core-data", "gw1", address="10.9.0.7", port=59880, manifest_port=1234), deadline, 2)
    assert (by_ip.address, by_ip.port, by_ip.mapped) == ("10.9.0.7", 59880, None)
    by_name = reach(container(manifest_address="127.0.0.1", manifest_port=1234), deadline, 2)
    assert (by_name.address, by_name.port, by_name.mapped, by_name.addresses) == (
        "edgex-core-data", 59880, None, ((socket.AF_INET, "10.9.0.5"),))


def test_an_unresolvable_name_maps_to_the_manifest_address_and_published_port(dns):
    dns.names["edgex-core-data"] = "nxdomain"
    endpoint = reach(container(node_address=NOT_HERE, manifest_address="127.0.0.1", manifest_port=15880),
                     time.monotonic() + 2, 2)
    assert (endpoint.address, endpoint.port) == ("127.0.0.1", 15880)
    assert (endpoint.registered_address, endpoint.registered_port) == ("edgex-core-data", 59880)
    assert endpoint.mapped == "edgex-core-data does not resolve here"


def test_without_a_manifest_address_it_maps_to_loopback_on_the_gateway_else_to_the_node(dns):
    dns.names["edgex-core-data"] = "nxdomain"
    deadline = time.monotonic() + 2
    here = reach(container(node_address="127.0.0.1"), deadline, 2)
    assert (here.address, here.port) == ("127.0.0.1", 59880)  # no published port known: the same number
    elsewhere = reach(container(node_address=NOT_HERE, manifest_port=15880), deadline, 2)
    assert (elsewhere.address, elsewhere.port) == (NOT_HERE, 15880)
    # a manifest synced from the registry holds the container name itself: not an address to use
    synced = reach(container(node_address=NOT_HERE, manifest_address="edgex-core-data"), deadline, 2)
    assert synced.address == NOT_HERE


def test_a_name_with_nothing_to_map_to_is_unreachable_naming_why(dns):
    dns.names["edgex-core-data"] = "nxdomain"
    with pytest.raises(Unreachable, match="^cannot resolve edgex-core-data \\(Name or service not known\\)$"):
        reach(container(), time.monotonic() + 2, 2)


def test_a_lookup_that_overruns_is_a_failed_probe_not_a_mapping(dns):
    dns.names["edgex-core-data"] = "hang"
    started = time.monotonic()
    with pytest.raises(Unreachable, match="^cannot resolve edgex-core-data within 0.4s$"):
        reach(container(node_address="127.0.0.1", manifest_address="127.0.0.1"), started + 0.4, 0.4)
    assert time.monotonic() - started < 1.5


# -- in a health check -------------------------------------------------------------------------
def test_container_host_names_are_probed_at_the_published_port(dns, serve):
    # Issue 10 item 3: every service was "cannot resolve the address" instead of being probed.
    dns.names["edgex-core-data"] = "nxdomain"
    port = serve("ok")
    service = container(node_address="127.0.0.1", manifest_address="127.0.0.1", manifest_port=port)
    (result,) = check_services([service], timeout=2.0, registry_source="consul")
    assert (result.verdict, result.probe) == ("healthy", "edgex-ping")
    assert (result.address, result.port, result.target) == ("127.0.0.1", port, "http://127.0.0.1:%d%s" % (port, PING))
    assert (result.registered_address, result.registered_port) == ("edgex-core-data", 59880)
    assert result.mapped == "edgex-core-data does not resolve here"


def test_sixty_four_hung_lookups_take_about_one_probe_timeout(dns):
    # Issue 10 item 4: 64 probes of unresolvable names with probe_timeout 1 took 10 s.
    services = []
    for index in range(64):
        service = container("device-%d" % index, node_address="127.0.0.1", manifest_port=free_port())
        dns.names[service.address] = "hang"
        services.append(service)
    started = time.monotonic()
    results = check_services(services, timeout=1.0, max_workers=32)
    elapsed = time.monotonic() - started
    assert elapsed < 3.0, elapsed  # about one timeout; glibc alone waits 10 s for a silent DNS server
    assert summary(results)["unhealthy"] == 64
    assert results[5].reasons == ["cannot resolve edgex-device-5 within 1.0s"]


def test_keeper_services_at_container_names_take_the_manifests_address(dns, serve):
    # Issue 10 item 11: keeper said UP, every service was probed at its container name, and the
    # manifest's 127.0.0.1 was ignored because the registered host won.
    dns.names["edgex-core-data"] = "nxdomain"
    port = serve("ok")
    keeper = Discovery("keeper", nodes=[NodeRecord("127.0.0.1", "127.0.0.1", status="passing")],
                       services=[container(node="127.0.0.1", status="passing")])
    manifest = Discovery("manifest", nodes=[NodeRecord("127.0.0.1", "127.0.0.1")],
                         services=[ServiceRecord("core-data", "127.0.0.1", address="127.0.0.1", port=port)])
    selection = Selection(keeper, manifest, ["127.0.0.1"])
    (result,) = check_services(selection.services, timeout=2.0, registry_source="keeper")
    assert (result.verdict, result.address, result.port) == ("healthy", "127.0.0.1", port)


def test_reachable_endpoints_give_the_inventory_both_addresses(dns):
    dns.names.update({"edgex-core-data": "nxdomain", "edgex-core-command": ["10.9.0.6"], "edgex-x": "hang"})
    consul = Discovery("consul", nodes=[NodeRecord("gw1", NOT_HERE)], services=[
        container("core-data"), container("core-command", port=59882), container("x", port=1),
        ServiceRecord("ui", "gw1")])
    manifest = Discovery("manifest", nodes=[NodeRecord("gw1", NOT_HERE)], services=[
        ServiceRecord("core-data", "gw1", address=NOT_HERE, port=15880)])
    started = time.monotonic()
    endpoints = reachable_endpoints(consul, manifest, timeout=0.5)
    assert time.monotonic() - started < 2.0
    assert endpoints[("gw1", "core-data")] == dict(address=NOT_HERE, port=15880, registered_address="edgex-core-data",
                                                   registered_port=59880,
                                                   mapped="edgex-core-data does not resolve here")
    assert endpoints[("gw1", "core-command")] == dict(address="edgex-core-command", port=59882,
                                                      registered_address="edgex-core-command", registered_port=59882,
                                                      mapped=None)
    assert endpoints[("gw1", "x")]["error"] == "cannot resolve edgex-x within 0.5s"
    assert endpoints[("gw1", "ui")] == dict(registered_address=None, registered_port=None,
                                            error="no address and port")
