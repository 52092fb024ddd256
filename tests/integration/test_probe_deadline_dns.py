"""Probes keep their deadline against the system's real resolver (glibc getaddrinfo) when the DNS
server never answers (issue 10 item 4: 64 probes of unresolvable names with probe_timeout 1 took
10 s, as glibc waits 5 s twice).

The check runs in a child process in a network and mount namespace of its own (unshare; root
needed, else skipped): loopback only, /etc/resolv.conf bind-mounted to name a stub DNS server on
127.0.0.1 (bench/health/stub_dns.py) that never answers. Nothing can leave the machine."""

import json
import os
import shutil
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

CHILD = r"""
import json, subprocess, sys, time
sys.path[:0] = [%(repo)r, %(collections)r]
from bench.health.stub_dns import StubDNS
from ansible_collections.edgex.sysmgmt.plugins.module_utils._gateway.health import check_services
from ansible_collections.edgex.sysmgmt.plugins.module_utils._registry.model import ServiceRecord

subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
names = ["edgex-device-%%d" %% index for index in range(64)]
dns = StubDNS(hang=names).start()
with open(%(resolv)r, "w") as handle:
    handle.write("nameserver 127.0.0.1\noptions timeout:5 attempts:2\n")
subprocess.run(["mount", "--bind", %(resolv)r, "/etc/resolv.conf"], check=True)
services = [ServiceRecord("device-%%d" %% index, "gw1", address=name, port=59900)
            for index, name in enumerate(names)]
started = time.monotonic()
results = check_services(services, timeout=1.0, max_workers=32)
print(json.dumps({"elapsed": time.monotonic() - started, "queries": dns.queries,
                  "reasons": sorted(set(reason for r in results for reason in r.reasons))}))
"""


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("unshare") or not shutil.which("ip"),
                    reason="needs root, unshare(1) and ip(8) for a network namespace of its own")
def test_sixty_four_names_a_silent_dns_server_never_answers_cost_about_one_timeout(tmp_path):
    code = CHILD % {"repo": REPO, "collections": os.path.join(REPO, ".collections"),
                    "resolv": str(tmp_path / "resolv.conf")}
    child = subprocess.run(["unshare", "--net", "--mount", "--", sys.executable, "-c", code],
                           capture_output=True, text=True, timeout=120, check=False)
    assert child.returncode == 0, child.stderr
    answer = json.loads(child.stdout.strip().splitlines()[-1])
    assert answer["queries"]["hung"] > 0  # the names did reach the (silent) stub through glibc
    assert answer["reasons"] == sorted("cannot resolve edgex-device-%d within 1.0s" % index for index in range(64))
    assert answer["elapsed"] < 4.0, answer["elapsed"]  # about one timeout; it was 10 s per round of 32
