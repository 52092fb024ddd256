"""extensions/awx/: the AWX setup playbook and the project's wrappers pass --syntax-check (no AWX
server here), the registry credential's injectors work as AWX renders them, and every survey
variable is one the collection's playbooks read."""

import json
import os
import re
import subprocess
import sys

import jinja2.sandbox
import pytest
import yaml

from tests.integration.playbook import REPO, ansible_env
from plugins.module_utils._registry.settings import resolve_registry_settings

AWX = os.path.join(REPO, "extensions", "awx")
PROJECT = os.path.join(AWX, "project")
BIN = os.path.dirname(sys.executable)


class _UnsafeLoader(yaml.SafeLoader):
    """Reads Ansible's !unsafe as the plain string AWX receives."""


_UnsafeLoader.add_constructor("!unsafe", lambda loader, node: loader.construct_scalar(node))


def load(path):
    with open(path) as handle:
        return yaml.load(handle, Loader=_UnsafeLoader)


def syntax_check(playbook):
    env = ansible_env(ANSIBLE_COLLECTIONS_PATH=os.pathsep.join(
        [os.path.join(REPO, ".collections")] + [p for p in sys.path if p.endswith("site-packages")]))
    env.pop("ANSIBLE_STDOUT_CALLBACK")
    return subprocess.run([os.path.join(BIN, "ansible-playbook"), "--syntax-check", "-i", "localhost,", playbook],
                          env=env, capture_output=True, text=True, cwd=os.path.dirname(playbook), check=False)


def test_setup_playbook_passes_syntax_check():
    result = syntax_check(os.path.join(AWX, "setup.yml"))
    assert result.returncode == 0, result.stdout + result.stderr


WRAPPERS = sorted(name for name in os.listdir(PROJECT) if name.endswith(".yml"))


@pytest.mark.parametrize("wrapper", WRAPPERS)
def test_project_wrapper_imports_a_playbook_of_the_collection(wrapper):
    imported = load(os.path.join(PROJECT, wrapper))[0]["ansible.builtin.import_playbook"]
    assert imported == "edgex.sysmgmt." + wrapper[:-len(".yml")]
    assert os.path.exists(os.path.join(REPO, "playbooks", wrapper)), \
        "%s imports a playbook the collection does not have" % wrapper
    result = syntax_check(os.path.join(PROJECT, wrapper))
    assert result.returncode == 0, result.stdout + result.stderr


def render_injectors(inputs, tmp_path):
    """What AWX does when a job starts: only the inputs given are in the namespace, files are
    written first and named under tower.filename.<label>."""
    injectors = load(os.path.join(AWX, "registry_credential_type.yml"))["edgex_awx_registry_credential_injectors"]
    sandbox = jinja2.sandbox.ImmutableSandboxedEnvironment()
    namespace = {key: value for key, value in inputs.items() if value}
    filenames = {}
    for label, template in injectors["file"].items():
        path = tmp_path / ("cred-" + label.split(".", 1)[1])
        path.write_text(sandbox.from_string(template).render(**namespace))
        filenames[label.split(".", 1)[1]] = str(path)
    namespace["tower"] = {"filename": filenames}
    render = {kind: {name: sandbox.from_string(template).render(**namespace)
                     for name, template in injectors[kind].items()} for kind in ("env", "extra_vars")}
    return render["env"], render["extra_vars"]


def test_credential_inputs_declare_what_the_injectors_use():
    credential_type = load(os.path.join(AWX, "registry_credential_type.yml"))
    fields = {field["id"]: field for field in credential_type["edgex_awx_registry_credential_inputs"]["fields"]}
    assert set(fields) == {"address", "token", "ca_cert"}
    assert fields["token"].get("secret") is True and fields["ca_cert"].get("multiline") is True


def test_credential_env_is_what_the_collection_reads(tmp_path):
    pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
    env, extra_vars = render_injectors({"address": "https://consul.example.com:8501", "token": "s3cret",
                                        "ca_cert": pem}, tmp_path)
    settings = resolve_registry_settings({"registry_type": "consul"}, environ=env)
    assert (settings["scheme"], settings["host"], settings["port"]) == ("https", "consul.example.com", 8501)
    assert settings["token"] == "s3cret"
    with open(settings["ca_path"]) as handle:
        assert handle.read() == pem
    # Modules run on the gateways, where the job's environment does not reach: the token goes
    # there as the extra var the roles pass on as `token`.
    assert extra_vars == {"edgex_registry_token": "s3cret"}


def test_credential_without_ca_leaves_ca_unset(tmp_path):
    env, _extra_vars = render_injectors({"address": "127.0.0.1:8500", "token": "s3cret"}, tmp_path)
    assert env["CONSUL_CACERT"] == ""
    settings = resolve_registry_settings({"registry_type": "consul"}, environ=env)
    assert settings.get("ca_path") is None and settings["scheme"] == "http" and settings["port"] == 8500


def test_inventory_source_reads_the_fleet_with_the_injected_credential(consul_acl, tmp_path):
    """The project's fleet.edgex.yml as an AWX inventory update runs it: only the credential's env."""
    consul_acl.client().agent.service.register("core-data", address="127.0.0.1", port=59880)
    env, _extra_vars = render_injectors({"address": "%s:%d" % (consul_acl.host, consul_acl.port),
                                         "token": consul_acl.token}, tmp_path)
    run_env = ansible_env(**env)
    run_env.pop("ANSIBLE_STDOUT_CALLBACK")
    result = subprocess.run([os.path.join(BIN, "ansible-inventory"), "-i",
                             os.path.join(PROJECT, "inventories", "fleet.edgex.yml"), "--list"],
                            env=run_env, capture_output=True, text=True, cwd=str(tmp_path), check=False)
    assert result.returncode == 0, result.stderr
    inventory = json.loads(result.stdout)
    assert "core-data" in inventory["_meta"]["hostvars"]["gw1"]["edgex_services"]
    assert consul_acl.token not in result.stdout + result.stderr

    # Without the credential's token, the ACL (default deny) filters the answer, which the plugin
    # refuses rather than serve a partial fleet.
    anonymous = subprocess.run([os.path.join(BIN, "ansible-inventory"), "-i",
                                os.path.join(PROJECT, "inventories", "fleet.edgex.yml"), "--list"],
                               env=dict(run_env, CONSUL_HTTP_TOKEN=""), capture_output=True, text=True,
                               cwd=str(tmp_path), check=False)
    assert anonymous.returncode != 0, anonymous.stdout
    assert "filtered its answer by ACLs" in anonymous.stderr and "without a token" in anonymous.stderr


def readable_variables(playbook):
    """Variables a playbook of the collection reads: its own text and its roles' argument specs."""
    with open(os.path.join(REPO, "playbooks", playbook)) as handle:
        text = handle.read()
    names = set()
    for role in os.listdir(os.path.join(REPO, "roles")):
        if "edgex.sysmgmt.%s" % role in text:
            specs = load(os.path.join(REPO, "roles", role, "meta", "argument_specs.yml"))["argument_specs"]
            for entry in specs.values():
                names.update(entry.get("options", {}))
    return names, text


def job_templates():
    tasks = load(os.path.join(AWX, "setup.yml"))[0]["tasks"]
    return [task["awx.awx.job_template"] for task in tasks if "awx.awx.job_template" in task]


def test_job_templates_cover_health_restart_and_configure():
    assert sorted(template["playbook"] for template in job_templates()) == ["configure.yml", "health.yml",
                                                                            "restart.yml"]
    for template in job_templates():
        assert os.path.exists(os.path.join(PROJECT, template["playbook"]))
        assert "EdgeX registry" in template["credentials"]


@pytest.mark.parametrize("template", job_templates(), ids=lambda template: template["playbook"])
def test_survey_variables_are_read_by_the_playbook(template):
    setup_vars = load(os.path.join(AWX, "setup.yml"))[0]["vars"]
    variables = []
    for question in template["survey_spec"]["spec"]:
        if isinstance(question, str):  # "{{ edgex_awx_..._question }}" or one combined with a new variable
            base = setup_vars[question.split()[1]]
            variables.append("edgex_health_services" if "edgex_health_services" in question else base["variable"])
        else:
            variables.append(question["variable"])
    names, text = readable_variables(template["playbook"])
    for variable in variables:
        # A whole word: edgex_services_result must not vouch for edgex_services.
        assert variable in names or re.search(r"\b%s\b" % re.escape(variable), text), \
            "survey variable %s is read neither by playbooks/%s nor by its roles" % (variable, template["playbook"])
