"""One set of registry variables, defined once, and the same as the modules' registry options.

Role edgex.sysmgmt.edgex_registry defines the edgex_registry_* variables (and edgex_manifest_path):
their defaults, their argument spec and edgex_registry_module_defaults, the mapping every role and
playbook passes as module_defaults for group/edgex.sysmgmt.registry. These tests hold that file
to the modules' argument spec, and hold the other roles and the playbooks to using it, so that
nothing can drift: no other file may define or pass a registry option.
"""

import glob
import os
import re

import pytest
import yaml
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar

from ansible_collections.edgex.sysmgmt.plugins.module_utils._registry.settings import registry_argument_spec

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ROLE = os.path.join(REPO, "roles", "edgex_registry")
SPEC = registry_argument_spec()
# The variable of each module option: edgex_registry_<option>, but registry_type is not repeated
# and the manifest keeps the name every inventory and playbook already used.
VARIABLE = {option: "edgex_registry_" + option for option in SPEC}
VARIABLE.update(registry_type="edgex_registry_type", manifest_path="edgex_manifest_path")
GROUP = "group/edgex.sysmgmt.registry"
MAPPING = "{{ edgex_registry_module_defaults }}"


def load(*parts):
    with open(os.path.join(REPO, *parts)) as handle:
        return yaml.safe_load(handle)


DEFAULTS = load("roles", "edgex_registry", "defaults", "main.yml")
ROLE_SPEC = load("roles", "edgex_registry", "meta", "argument_specs.yml")["argument_specs"]["main"]["options"]
REGISTRY_MODULES = {"edgex.sysmgmt." + name for name in load("meta", "runtime.yml")["action_groups"]["registry"]}


# -- the one definition ---------------------------------------------------------------------------
def test_the_role_spec_has_one_variable_per_module_option():
    assert sorted(ROLE_SPEC) == sorted(VARIABLE.values())


@pytest.mark.parametrize("option", sorted(SPEC))
def test_each_variable_agrees_with_the_module_option(option):
    variable, module = VARIABLE[option], SPEC[option]
    role = ROLE_SPEC[variable]
    assert role["type"] == module["type"]
    assert role.get("choices") == module.get("choices")
    assert role.get("default") == module.get("default")
    if "default" in module:
        assert DEFAULTS[variable] == module["default"]
    else:  # unset: the module decides (its environment variables, its own default)
        assert variable not in DEFAULTS


ENTRY = re.compile(r"'(\w+)': (\w+)( \| default\(omit(?:, true)?\))?")


def test_the_module_defaults_mapping_passes_every_option_from_its_variable():
    # one expression building the mapping: {{ {'option': variable | default(omit, true), ...} }}
    expression = DEFAULTS["edgex_registry_module_defaults"]
    assert expression.startswith("{{ {") and expression.endswith("} }}"), expression
    entries = expression[len("{{ {"):-len("} }}")].split(",\n")
    assert all(ENTRY.fullmatch(entry.strip()) for entry in entries), entries
    mapping = dict(ENTRY.fullmatch(entry.strip()).group(1, 2) for entry in entries)
    assert mapping == VARIABLE


@pytest.mark.parametrize("given, expected", [
    ({}, {"registry_type": "consul", "timeout": 5.0, "fallback_on_auth_error": False}),
    ({"edgex_registry_type": "keeper", "edgex_registry_host": "k.example", "edgex_registry_port": 59891,
      "edgex_registry_token": "t", "edgex_registry_validate_certs": False, "edgex_manifest_path": "/m.yml"},
     {"registry_type": "keeper", "host": "k.example", "port": 59891, "token": "t", "validate_certs": False,
      "timeout": 5.0, "fallback_on_auth_error": False, "manifest_path": "/m.yml"}),
    # An empty string is unset, as the old "" defaults meant; false is a value.
    ({"edgex_registry_token": "", "edgex_registry_datacenter": "", "edgex_registry_validate_certs": True},
     {"registry_type": "consul", "timeout": 5.0, "fallback_on_auth_error": False, "validate_certs": True}),
])
def test_the_mapping_renders_what_was_set_and_omits_the_rest(given, expected):
    loader = DataLoader()
    defaults = loader.load_from_file(os.path.join(ROLE, "defaults", "main.yml"), trusted_as_template=True)
    variables = dict(defaults, **given)
    rendered = Templar(loader=loader, variables=variables).template(defaults["edgex_registry_module_defaults"])
    assert rendered == expected


# -- nobody else defines or passes them -----------------------------------------------------------------
REGISTRY_VARIABLES = set(VARIABLE.values())


@pytest.mark.parametrize("role", ["edgex_services", "edgex_health"])
def test_the_roles_take_the_variables_from_the_registry_role(role):
    dependencies = load("roles", role, "meta", "main.yml")["dependencies"]
    if role == "edgex_health":
        # no dependency (its argument check would be a task on every gateway of a fleet): each task
        # file that calls a registry module imports the registry role first
        assert dependencies == []
        for path in TASK_FILES:
            if "/edgex_health/" in path and list(calls_in(path)):
                first = load(path)[0]
                assert first["ansible.builtin.import_role"]["name"] == "edgex.sysmgmt.edgex_registry", path
    else:
        assert {"role": "edgex.sysmgmt.edgex_registry"} in dependencies
    assert not REGISTRY_VARIABLES & set(load("roles", role, "defaults", "main.yml"))
    for entry_point in load("roles", role, "meta", "argument_specs.yml")["argument_specs"].values():
        assert not REGISTRY_VARIABLES & set(entry_point.get("options", {}))


def registry_module_calls(tasks, inherited=None):
    """(task, module_defaults in force) for every task that calls a registry-group module."""
    for task in tasks or []:
        in_force = task.get("module_defaults", inherited)
        for key in ("block", "rescue", "always"):
            if key in task:
                yield from registry_module_calls(task[key], in_force)
        for module in REGISTRY_MODULES & set(task):
            yield task, module, in_force


TASK_FILES = sorted(glob.glob(os.path.join(REPO, "roles", "*", "tasks", "*.yml")))
PLAYBOOKS = sorted(glob.glob(os.path.join(REPO, "playbooks", "*.yml")))


def calls_in(path):
    if path in TASK_FILES:
        yield from registry_module_calls(load(path))
        return
    for play in load(path):
        roles = [r["role"] if isinstance(r, dict) else r for r in play.get("roles", [])]
        for task, module, in_force in registry_module_calls(play.get("tasks"), play.get("module_defaults")):
            yield task, module, in_force, roles


@pytest.mark.parametrize("path", TASK_FILES + PLAYBOOKS, ids=[os.path.relpath(p, REPO) for p in TASK_FILES + PLAYBOOKS])
def test_registry_options_reach_modules_only_through_module_defaults(path):
    for call in calls_in(path):
        task, module = call[0], call[1]
        inline = set(task[module] or {}) & set(SPEC)
        assert not inline, "%s: %s passes %s inline" % (os.path.relpath(path, REPO), module, ", ".join(sorted(inline)))
        assert call[2] == {GROUP: MAPPING}, "%s: %s without module_defaults %s" % (path, module, GROUP)
        if path in PLAYBOOKS:
            assert "edgex.sysmgmt.edgex_registry" in call[3], "%s: the play does not list the registry role" % path


def test_every_playbook_and_role_that_calls_a_registry_module_is_checked():
    checked = [path for path in TASK_FILES + PLAYBOOKS if list(calls_in(path))]
    assert {os.path.relpath(p, REPO) for p in checked} >= {
        "roles/edgex_services/tasks/main.yml", "roles/edgex_health/tasks/main.yml", "playbooks/restart.yml",
        "playbooks/bounce_all.yml", "playbooks/manifest_sync.yml"}
