#!/usr/bin/env bash
# make demo: the main job on the local test-bed (two gateways of EdgeX stand-ins + Consul emulator,
# and a third run by systemd as PID 1).
# Each step prints what it shows; the test-bed stays up at the end for you to explore.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
export ANSIBLE_COLLECTIONS_PATH="$PWD/.collections"
export ANSIBLE_PYTHON_INTERPRETER="$PWD/$PY"
export ANSIBLE_NOCOLOR=1
# An inventory source that cannot be used fails the run instead of leaving it an empty inventory
# (inventories/ansible.cfg says the same for your own runs).
export ANSIBLE_INVENTORY_UNPARSED_FAILED=true ANSIBLE_INVENTORY_ANY_UNPARSED_IS_FAILED=true
STATE=testbed-state
INVENTORY=inventories/consul/edgex.edgex.yml

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
# The gateways are addresses on this machine: the playbooks run with a local connection.
PLAY=(.venv/bin/ansible-playbook -i "$INVENTORY" -e ansible_connection=local
      -e edgex_manifest_path="$PWD/$STATE/manifest.yml" -e edgex_wait_timeout=30)
REPORT="$PWD/$STATE/report"
health_report() {
  "${PLAY[@]}" playbooks/health.yml -e edgex_report_dir="$REPORT" -e edgex_health_check_executor=true "$@" \
    | grep -E '"msg"|PLAY RECAP|ok=|failed=' || true
}

step "1. Test-bed: 2 gateways (127.0.0.1, 127.0.0.2) of EdgeX stand-ins registering in Consul"
$PY tests/testbed/testbed.py up --gateways 2 --check-interval 2s
sleep 3  # one check interval, so the health columns are filled in

step "2. What the registry knows (Consul: services, addresses, health)"
$PY demo/show_registry.py --host 127.0.0.1 --port 8500

step "2b. Fleet health report (playbooks/health.yml): $REPORT/health.html and health.json"
health_report

step "3. Record the last known state: edgex_manifest state=synced (keeps executors and depends_on)"
.venv/bin/ansible-playbook -i localhost, playbooks/manifest_sync.yml -e edgex_manifest_path="$PWD/$STATE/manifest.yml"

step "4. The inventory from Consul (ansible-inventory --graph)"
.venv/bin/ansible-inventory -i "$INVENTORY" --graph

step "5. Consul stops answering (the emulator is told to hang): the inventory comes from the manifest, and says so"
consul_fault() {  # the emulator's control API (not Consul's)
  $PY -c 'import sys, urllib.request as u; u.urlopen(u.Request("http://127.0.0.1:8500/_emulator/fault",
    data=("{\"mode\": %s, \"delay\": 30}" % sys.argv[1]).encode(), method="POST"), timeout=5)' "$1"
}
consul_fault '"slow"'
trap 'consul_fault null || true' EXIT
.venv/bin/ansible-inventory -i "$INVENTORY" --graph edgex_core_data
.venv/bin/ansible-inventory -i "$INVENTORY" --host gw2 | $PY -c '
import json, sys
v = json.load(sys.stdin)
print("gw2: edgex_source=%s, manifest age %.0fs, services: %s" % (
    v["edgex_source"], v["edgex_manifest_age"], ", ".join(sorted(v["edgex_services"]))))'
consul_fault null
trap - EXIT

step "6. Stop core-data on gw1 (playbooks/stop.yml): EdgeX deregisters it on the way down"
"${PLAY[@]}" playbooks/stop.yml -l gw1 -e '{"edgex_services_names": ["core-data"]}'
$PY demo/show_registry.py --host 127.0.0.1 --port 8500 | grep -E "^(source|NODE|gw1 )" || true

step "7. Start all on every gateway, in dependency order (playbooks/start.yml): only core-data changes"
"${PLAY[@]}" playbooks/start.yml

step "8. Rolling restart, one gateway at a time, health gate between (playbooks/restart.yml)"
"${PLAY[@]}" playbooks/restart.yml -e edgex_serial=1

step "9. Configuration (playbooks/configure.yml on gw1): a Writable key goes live, nothing restarts"
# StartedAt of gw1's containers, to see what a run bounced.
started() { docker ps -q --filter label=edgex.gateway=gw1 | xargs docker inspect -f '{{.Name}} {{.State.StartedAt}}' | sort; }
config_of() { $PY -c 'import json, sys, urllib.request as u
config = json.load(u.urlopen("http://127.0.0.1:59880/api/v3/config", timeout=5))["config"]
print("core-data reports: Writable.LogLevel=%s Service.RequestTimeout=%s" % (
    config["Writable"]["LogLevel"], config["Service"]["RequestTimeout"]))'; }
configure() { "${PLAY[@]}" playbooks/configure.yml -l gw1 -e "$1" | grep -E '"msg"|restart_required|PLAY RECAP|failed=' || true; }
config_of
before=$(started)
configure '{"edgex_config_names": ["core-data"], "edgex_config_settings": {"Writable": {"LogLevel": "DEBUG"}}}'
config_of
echo "containers restarted: $(diff <(echo "$before") <(started) | grep -c '^>' || true)"

step "10. A key outside Writable (Service.RequestTimeout): exactly core-data bounces, and /config proves it took"
before=$(started)
configure '{"edgex_config_names": ["core-data"], "edgex_config_settings": {"Service": {"RequestTimeout": "10s"}}}'
config_of
echo "containers restarted on gw1:"
{ diff <(echo "$before") <(started) || true; } | sed -n 's/^> /  /p'
echo "gw2 shares gw1's Consul store: its own core-data still runs the old value, and a check-mode run says so:"
"${PLAY[@]}" playbooks/configure.yml -l gw2 --check \
  -e '{"edgex_config_names": ["core-data"], "edgex_config_settings": {"Service": {"RequestTimeout": "10s"}}}' \
  | grep -E '"msg"' || true

step "11. Metrics of every service on gw1 (edgex.sysmgmt.edgex_metrics: engine stats, one concurrent pass)"
ANSIBLE_STDOUT_CALLBACK=ansible.posix.json ANSIBLE_LOAD_CALLBACK_PLUGINS=1 \
  .venv/bin/ansible gw1 -i "$INVENTORY" -e ansible_connection=local -m edgex.sysmgmt.edgex_metrics \
  -a "{\"node\": \"gw1\", \"manifest_path\": \"$PWD/$STATE/manifest.yml\"}" | $PY demo/show_metrics.py

step "12. Fleet health report again, with the metrics columns (edgex_health_metrics=true): $REPORT/health.html"
health_report -e edgex_health_metrics=true
$PY -c 'import json, sys
report = json.load(open(sys.argv[1]))
print("health.json, per service: verdict, CPU %, memory, restarts")
for host, entry in sorted(report["hosts"].items()):
    for s in entry["services"]:
        m = s.get("metrics") or {}
        print("  %-4s %-22s %-9s %6s %9s %3s" % (host, s["name"], s["verdict"], m.get("cpu_percent", "-"),
              "%.1f MiB" % (m["memory_used"] / 1048576.0) if m.get("memory_used") else "-", m.get("restarts", "-")))' \
  "$REPORT/health.json"

step "13. A systemd gateway beside them: systemd as PID 1, the stand-ins as units edgex-<service>.service"
# Its own network namespace and Consul emulator (a unit too); the modules run inside it.
SDGW=edgex-demo-sdgw
$PY tests/testbed/systemd_gateway.py up --name "$SDGW" --node sdgw >/dev/null
printf 'sdgw ansible_connection=community.docker.docker ansible_host=%s ansible_python_interpreter=/usr/bin/python3\n' \
  "$SDGW" > "$STATE/systemd-gateway.ini"
SDPLAY=(.venv/bin/ansible-playbook -i "$STATE/systemd-gateway.ini" -e edgex_hosts=sdgw
        -e edgex_manifest_path=/etc/edgex/manifest.yml -e edgex_wait_timeout=30)
"${SDPLAY[@]}" playbooks/start.yml | grep -E 'PLAY RECAP|ok=' || true
docker exec "$SDGW" systemctl list-units 'edgex-*' --no-pager --no-legend
"${SDPLAY[@]}" playbooks/health.yml -e edgex_report_dir="$REPORT-systemd" -e edgex_health_check_executor=true \
  | grep -E '"msg"|PLAY RECAP|ok=' || true

step "Done. The test-bed is still running: explore it with"
cat <<'TXT'
  .venv/bin/ansible-inventory -i inventories/consul/edgex.edgex.yml --list
  .venv/bin/python tests/testbed/testbed.py status
  docker exec edgex-demo-sdgw systemctl status 'edgex-*'    # the systemd gateway
Tear it down with:  make testbed-down
TXT
