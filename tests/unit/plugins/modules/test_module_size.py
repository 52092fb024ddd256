"""Every module is its documentation and a short GatewayModule subclass: what decides anything
lives in module_utils, where unit tests reach it."""

import ast
import glob
import os

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))
MODULES = sorted(glob.glob(os.path.join(REPO, "plugins", "modules", "*.py")))
DOC_STRINGS = ("DOCUMENTATION", "EXAMPLES", "RETURN")
MAX_LINES = 60


def code_lines(path):
    """Lines of Python outside DOCUMENTATION/EXAMPLES/RETURN, blank lines and comments not counted."""
    with open(path) as handle:
        source = handle.read()
    documented = set()
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) in DOC_STRINGS for t in node.targets):
            documented.update(range(node.lineno, node.end_lineno + 1))
    return [line for number, line in enumerate(source.splitlines(), 1)
            if number not in documented and line.strip() and not line.strip().startswith("#")]


def test_there_are_modules_to_check():
    assert len(MODULES) >= 5


@pytest.mark.parametrize("path", MODULES, ids=os.path.basename)
def test_a_module_has_at_most_60_lines_of_python(path):
    lines = code_lines(path)
    assert len(lines) <= MAX_LINES, "%s has %d lines of Python outside its documentation" % (path, len(lines))


@pytest.mark.parametrize("path", MODULES, ids=os.path.basename)
def test_a_module_is_a_gateway_module_or_an_action_plugins_documentation(path):
    source = open(path).read()
    action = os.path.join(REPO, "plugins", "action", os.path.basename(path))
    if os.path.exists(action):  # the action plugin does the work; the module file only documents it
        assert all(line.startswith(("from __future__", "#")) for line in code_lines(path)), path
    else:
        assert "GatewayModule" in source and "AnsibleModule(" not in source
