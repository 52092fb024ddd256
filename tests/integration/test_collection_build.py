"""The collection builds without test-bed or venv files and installs offline."""

import os
import subprocess
import sys
import tarfile

from tests.integration.playbook import REPO

BIN = os.path.dirname(sys.executable)


def test_build_and_offline_install(tmp_path):
    subprocess.run([os.path.join(BIN, "ansible-galaxy"), "collection", "build", "--output-path", str(tmp_path), REPO],
                   check=True, capture_output=True, text=True, timeout=120)
    tarball = [p for p in tmp_path.iterdir() if p.name.endswith(".tar.gz")][0]
    with tarfile.open(str(tarball)) as archive:
        names = archive.getnames()
    assert "plugins/inventory/edgex.py" in names and "plugins/modules/edgex_manifest.py" in names
    assert "docs/manifest.schema.json" in names
    # Of the test-bed, only the modules tests/unit needs ship (tests/galaxy checks the whole of tests/).
    for unwanted in (".venv", ".collections", "tests/testbed/standin", "tests/testbed/.cache", "tests/integration",
                     "testbed-state", "bench", ".git", "demo"):
        assert not [n for n in names if n == unwanted or n.startswith(unwanted + "/")], unwanted
    assert "tests/testbed/testbed.py" not in names and "tests/testbed/consul_emulator.py" not in names

    install_dir = tmp_path / "installed"
    env = dict(os.environ, ANSIBLE_GALAXY_SERVER_LIST="", ANSIBLE_GALAXY_SERVER="http://127.0.0.1:9")
    subprocess.run([os.path.join(BIN, "ansible-galaxy"), "collection", "install", "--offline", "--force", "-p", str(install_dir),
                    str(tarball)], check=True, capture_output=True, text=True, timeout=120, env=env)
    assert (install_dir / "ansible_collections" / "edgex" / "sysmgmt" / "MANIFEST.json").exists()
    doc = subprocess.run([os.path.join(BIN, "ansible-doc"), "-t", "inventory", "edgex.sysmgmt.edgex"],
                         capture_output=True, text=True, timeout=120, check=False,
                         env=dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(install_dir)))
    assert doc.returncode == 0, doc.stderr
    assert "ansible_collections/edgex/sysmgmt/plugins/inventory/edgex.py" in doc.stdout
    assert str(install_dir) in doc.stdout
