"""The released tarball as Galaxy and a user get it: what it holds, galaxy-importer's verdict,
and ansible-test sanity and units on the collection installed from it (offline, --local)."""

import os
import re
import subprocess
import sys
import tarfile

import pytest
import yaml

from tests.integration.playbook import REPO

HERE = os.path.dirname(os.path.abspath(__file__))
BIN = os.path.dirname(sys.executable)
GALAXY_VENV = os.environ.get("EDGEX_GALAXY_VENV", os.path.join(REPO, ".venv-galaxy"))
# What ansible-lint's `sanity` rule (Red Hat certification) accepts in tests/sanity/ignore-*.txt.
CERTIFICATION_ALLOWED_IGNORES = {
    "validate-modules:missing-gplv3-license", "action-plugin-docs", "import-2.6", "import-2.6!skip",
    "import-2.7", "import-2.7!skip", "import-3.5", "import-3.5!skip", "compile-2.6", "compile-2.6!skip",
    "compile-2.7", "compile-2.7!skip", "compile-3.5", "compile-3.5!skip", "shellcheck", "shebang",
    "pylint:used-before-assignment",
}
# Of tests/, only what ansible-test reads on the installed collection.
SHIPPED_TESTS = re.compile(r"^tests/(config\.yml|sanity/ignore-[0-9.]+\.txt|unit/.*|report_schema\.py|"
                           r"testbed/(__init__|fixtures_consul|fixtures_keeper|keeper_emulator|emulator_http|releases)\.py)$")


@pytest.fixture(scope="module")
def tarball(tmp_path_factory):
    out = tmp_path_factory.mktemp("build")
    subprocess.run([os.path.join(BIN, "ansible-galaxy"), "collection", "build", "--force", "--output-path", str(out),
                    REPO], check=True, capture_output=True)
    (path,) = list(out.glob("edgex-sysmgmt-*.tar.gz"))
    return path


@pytest.fixture(scope="module")
def members(tarball):
    with tarfile.open(str(tarball)) as archive:
        return {member.name for member in archive.getmembers() if member.isfile()}


@pytest.fixture(scope="module")
def installed(tarball, tmp_path_factory):
    """The collection installed from the tarball, in a git repository (ansible-test wants one)."""
    root = tmp_path_factory.mktemp("installed")
    # --force: this checkout is installed already (.collections) as far as ansible-galaxy can see.
    subprocess.run([os.path.join(BIN, "ansible-galaxy"), "collection", "install", "--offline", "--force", "-p",
                    str(root), str(tarball)], check=True, capture_output=True)
    collection = root / "ansible_collections" / "edgex" / "sysmgmt"
    for argv in (["git", "init", "-q"], ["git", "add", "-A"],
                 ["git", "-c", "user.email=ci@localhost", "-c", "user.name=ci", "commit", "-qm", "installed"]):
        subprocess.run(argv, cwd=str(collection), check=True)
    return collection


def ansible_test(collection, *argv):
    # ansible-test downloads a pip bootstrap script; seeding its cache keeps it offline (as tests/sanity/run.sh).
    cache = os.path.expanduser("~/.ansible/test/cache")
    os.makedirs(cache, exist_ok=True)
    for version in ("24_2", "25_3"):
        seed = os.path.join(cache, "get_pip_%s.py" % version)
        if not os.path.exists(seed):
            with open(seed, "w") as handle:
                handle.write("import ensurepip; ensurepip.bootstrap(upgrade=True)\n")
    env = {key: value for key, value in os.environ.items() if not key.startswith("ANSIBLE_")}
    argv = [os.path.join(BIN, "ansible-test")] + list(argv) + ["--python", "3.11", "--local", "--color", "no"]
    return subprocess.run(argv, cwd=str(collection), env=env, capture_output=True, text=True, timeout=1800,
                          check=False)


def test_tarball_ships_what_galaxy_and_users_need(members):
    for needed in ("CHANGELOG.rst", "changelogs/changelog.yaml", "meta/runtime.yml", "meta/execution-environment.yml",
                   "meta/ee-requirements.txt", "meta/ee-bindep.txt", "meta/gateway-requirements.txt",
                   "extensions/ee/execution-environment.yml", "tests/config.yml", "tests/sanity/ignore-2.19.txt",
                   "tests/unit/conftest.py", "tests/testbed/keeper_emulator.py"):
        assert needed in members, needed
    for role in os.listdir(os.path.join(REPO, "roles")):
        assert "roles/%s/README.md" % role in members, role


def test_tarball_leaves_the_test_bed_and_repository_tools_out(members):
    stray = sorted(name for name in members if name.startswith("tests/") and not SHIPPED_TESTS.match(name))
    assert stray == []
    for name in members:
        assert not name.startswith(("extensions/awx/", "extensions/molecule/", "demo/", "bench/", "testbed-state/")), name
        assert "/.cache/" not in name and not name.endswith((".sh", ".tar.gz")), name


def test_sanity_ignores_are_only_those_certification_allows():
    for name in os.listdir(os.path.join(REPO, "tests", "sanity")):
        if not name.startswith("ignore-"):
            continue
        with open(os.path.join(REPO, "tests", "sanity", name)) as handle:
            for line in handle:
                entry = line.split("#", 1)[0].split()
                if entry:
                    assert entry[1] in CERTIFICATION_ALLOWED_IGNORES, "%s: %s" % (name, line.strip())


def test_role_readmes_name_every_variable_of_the_argument_specs():
    for role in os.listdir(os.path.join(REPO, "roles")):
        with open(os.path.join(REPO, "roles", role, "README.md")) as handle:
            readme = handle.read()
        with open(os.path.join(REPO, "roles", role, "meta", "argument_specs.yml")) as handle:
            specs = yaml.safe_load(handle)["argument_specs"]
        missing = sorted(option for entry in specs.values() for option in entry.get("options", {})
                         if option not in readme)
        assert missing == [], "roles/%s/README.md does not mention %s" % (role, missing)


def test_changelog_fragments_and_changelog_yaml_pass_antsibull_changelog_lint():
    collection = os.path.join(REPO, ".collections", "ansible_collections", "edgex", "sysmgmt")
    for argv in (["lint"], ["lint-changelog-yaml", "changelogs/changelog.yaml"]):
        completed = subprocess.run([os.path.join(BIN, "antsibull-changelog")] + argv, cwd=collection,
                                   capture_output=True, text=True, check=False)
        assert completed.returncode == 0 and not completed.stdout.strip(), completed.stdout + completed.stderr


def test_galaxy_importer_accepts_the_tarball(tarball, tmp_path):
    python = os.path.join(GALAXY_VENV, "bin", "python")
    assert os.access(python, os.X_OK), "no galaxy-importer venv at %s (make galaxy makes it)" % GALAXY_VENV
    env = dict(os.environ, GALAXY_IMPORTER_CONFIG=os.path.join(HERE, "galaxy-importer.cfg"),
               PATH=os.path.join(GALAXY_VENV, "bin") + os.pathsep + os.environ["PATH"])
    for key in [key for key in env if key.startswith("ANSIBLE_")]:
        del env[key]
    completed = subprocess.run([python, "-m", "galaxy_importer.main", str(tarball)], cwd=str(tmp_path), env=env,
                               capture_output=True, text=True, timeout=900, check=False)
    output = completed.stdout + completed.stderr
    assert completed.returncode == 0, output[-6000:]
    assert "Importer processing completed successfully" in output, output[-6000:]
    assert "Linting collection via ansible-lint" in output and "ansible-lint not found" not in output, output[-3000:]
    # One warning is by design: the importer names any non-empty sanity ignore file, and the
    # collection (Apache-2.0) needs missing-gplv3-license ignores (certification allows them).
    warnings = [line for line in output.splitlines() if line.startswith(("WARNING", "ERROR"))
                and not line.startswith("WARNING: Ignore files skip ansible-test sanity tests")]
    assert warnings == [], "\n".join(warnings)


def test_ansible_test_sanity_passes_on_the_installed_collection(installed):
    completed = ansible_test(installed, "sanity")
    assert completed.returncode == 0, (completed.stdout + completed.stderr)[-8000:]


def test_ansible_test_units_pass_on_the_installed_collection(installed):
    completed = ansible_test(installed, "units")
    output = completed.stdout + completed.stderr
    assert completed.returncode == 0, output[-8000:]
    assert re.search(r"\d+ passed", output), output[-3000:]
