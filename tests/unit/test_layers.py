"""plugins/module_utils/ is layered: a file imports only from layers above its own, never in a cycle.

Every import is read from the source (ast; imports inside functions included; relative and
absolute forms). The layer order is defined here once, in LAYERS; docs/architecture.md shows the
same table between its ``layers:begin``/``layers:end`` markers, and a test keeps the two equal.
"""

import ast
import os
import re

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODULE_UTILS = os.path.join(REPO, "plugins", "module_utils")
PACKAGE = "ansible_collections.edgex.sysmgmt.plugins.module_utils"
ARCHITECTURE = os.path.join(REPO, "docs", "architecture.md")

# Top first. A component is a module (``_errors``) or a package (``_net``); ``_registry.model`` is
# a component of its own because the manifest (below it) builds registry records, while the rest
# of _registry (settings, providers, discover) reads the manifest.
LAYERS = (
    ("_errors",),
    ("_names", "_catalog", "_report"),
    ("_fileio", "_ordering", "_net"),
    ("_registry.model",),
    ("_manifest",),
    ("_registry",),
    ("_executors",),
    ("_gateway",),
    ("_module",),
)
LAYER_OF = {component: index for index, components in enumerate(LAYERS) for component in components}

# Outside module_utils: what each kind of plugin may import from it. The inventory plugin and its
# option reader see the registry's public face only (the modules' skeleton, the executors and the
# gateway logic are not theirs); a filter may use the leaves, which take plain data.
ENTRY_POINTS = {
    "plugins/inventory": {"_errors", "_names", "_registry.settings", "_registry.discover", "_registry.model"},
    "plugins/plugin_utils": {"_errors", "_names", "_registry.settings", "_registry.discover", "_registry.model"},
    "plugins/filter": {"_errors", "_names", "_catalog", "_report"},
}


def python_files(top):
    for root, _dirs, files in os.walk(top):
        for name in sorted(files):
            if name.endswith(".py"):
                yield os.path.join(root, name)


def module_name(path):
    """plugins/module_utils/_net/http.py -> "_net.http"; a package's __init__.py -> the package."""
    relative = os.path.splitext(os.path.relpath(path, MODULE_UTILS))[0].split(os.sep)
    if relative[-1] == "__init__":
        relative = relative[:-1]
    return ".".join(relative)


def existing_module(dotted):
    """The module_utils module ``dotted`` names, or None (a name imported from a module, not a module)."""
    base = os.path.join(MODULE_UTILS, *dotted.split("."))
    if os.path.isfile(base + ".py") or os.path.isfile(os.path.join(base, "__init__.py")):
        return dotted
    return None


def imported_modules(path, package):
    """The module_utils modules ``path`` imports. ``package`` is its dotted package inside
    module_utils ('' at its top) to resolve relative imports, or None for a file outside it
    (only absolute imports of module_utils count there)."""
    with open(path) as handle:
        tree = ast.parse(handle.read(), path)
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            bases, names = [alias.name for alias in node.names], []
        elif isinstance(node, ast.ImportFrom) and node.level:
            if package is None:
                continue
            parts = package.split(".") if package else []
            parts = parts[:max(0, len(parts) - (node.level - 1))]
            bases, names = [".".join(parts + ([node.module] if node.module else []))], [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            bases, names = [node.module or ""], [alias.name for alias in node.names]
        else:
            continue
        for base in bases:
            if isinstance(node, ast.Import) or not node.level:
                if base != PACKAGE and not base.startswith(PACKAGE + "."):
                    continue  # the standard library or a third-party package
                base = base[len(PACKAGE) + 1:]
            # "from .pkg import name": name is a submodule of pkg, or an object defined in pkg.
            submodules = {existing_module("%s.%s" % (base, n) if base else n) for n in names} - {None}
            found.update(submodules)
            if base and len(submodules) < max(1, len(names)) and existing_module(base):
                found.add(base)
    return found


def component(module):
    """The LAYERS entry a module belongs to: the longest component that is it or contains it."""
    parts = module.split(".")
    for length in range(len(parts), 0, -1):
        candidate = ".".join(parts[:length])
        if candidate in LAYER_OF:
            return candidate
    raise AssertionError("%s is in no layer of LAYERS: add it there and to docs/architecture.md" % module)


def import_graph():
    graph = {}
    for path in python_files(MODULE_UTILS):
        module = module_name(path)
        package = module if path.endswith("__init__.py") else module.rpartition(".")[0]
        graph[module] = imported_modules(path, package)
    return graph


GRAPH = import_graph()


def find_cycle(graph):
    """One import cycle as a list of modules (first == last), or None."""
    state = {}

    def visit(node, trail):
        state[node] = "open"
        for target in sorted(graph.get(node, ())):
            if state.get(target) == "open":
                return trail[trail.index(target):] + [target] if target in trail else [node, target, node]
            if target not in state:
                cycle = visit(target, trail + [target])
                if cycle:
                    return cycle
        state[node] = "done"
        return None

    for start in sorted(graph):
        if start not in state:
            cycle = visit(start, [start])
            if cycle:
                return cycle
    return None


# -- the reader itself ------------------------------------------------------------------------------
def test_the_reader_sees_every_form_of_import(tmp_path):
    source = tmp_path / "sample.py"
    source.write_text(
        "from .._errors import EdgeXError\n"
        "from . import probe\n"
        "from .ledger import store\n"
        "import ansible_collections.edgex.sysmgmt.plugins.module_utils._catalog as catalog\n"
        "from ansible_collections.edgex.sysmgmt.plugins.module_utils._registry import model\n"
        "from ansible_collections.edgex.sysmgmt.plugins.module_utils._net.http import http_get\n"
        "import os, json\n"
        "def late():\n"
        "    from .._module import discover_for_module\n"
        "    from ..._not_there import x\n")
    assert imported_modules(str(source), "_gateway") == {
        "_errors", "_gateway.probe", "_gateway.ledger", "_catalog", "_registry.model", "_net.http", "_module"}


def test_the_cycle_finder_finds_one():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None
    assert find_cycle({"a": {"a"}}) == ["a", "a"]


# -- module_utils -----------------------------------------------------------------------------------
def test_every_module_is_in_a_layer():
    assert sorted(GRAPH)  # the walk found the package
    for module in GRAPH:
        component(module)


def test_no_import_cycle():
    assert find_cycle(GRAPH) is None, " -> ".join(find_cycle(GRAPH))


@pytest.mark.parametrize("module", sorted(GRAPH))
def test_imports_point_up_the_layers(module):
    own = component(module)
    wrong = ["%s (%s, layer %d)" % (target, component(target), LAYER_OF[component(target)])
             for target in sorted(GRAPH[module])
             if component(target) != own and LAYER_OF[component(target)] >= LAYER_OF[own]]
    assert not wrong, "%s (layer %d) imports from its own layer or below: %s" % (
        module, LAYER_OF[own], ", ".join(wrong))


def test_the_architecture_document_shows_the_same_layers():
    with open(ARCHITECTURE) as handle:
        text = handle.read()
    table = re.search(r"<!-- layers:begin -->(.*?)<!-- layers:end -->", text, re.S)
    assert table, "docs/architecture.md has no layers:begin/layers:end table"
    rows = [line for line in table.group(1).splitlines() if re.match(r"^\|\s*\d+\s*\|", line)]
    documented = tuple(tuple(re.findall(r"`([^`]+)`", row.split("|")[2])) for row in rows)
    assert documented == LAYERS


# -- the plugins' entry points into module_utils ------------------------------------------------------
PLUGIN_FILES = [(kind, path) for kind in sorted(ENTRY_POINTS)
                for path in python_files(os.path.join(REPO, *kind.split("/")))]


@pytest.mark.parametrize("kind, path", PLUGIN_FILES, ids=[os.path.relpath(p, REPO) for _k, p in PLUGIN_FILES])
def test_plugins_use_only_their_entry_points(kind, path):
    used = imported_modules(path, None)
    assert used <= ENTRY_POINTS[kind], "%s imports %s; %s may import only %s" % (
        os.path.relpath(path, REPO), ", ".join(sorted(used - ENTRY_POINTS[kind])), kind,
        ", ".join(sorted(ENTRY_POINTS[kind])))
