"""The package's shape: its modules import each other without a cycle (read from the source with
``ast``, function-local imports included), library modules name the package's own modules at the
top, and ``--help`` does not load TensorFlow."""

import ast
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = os.path.join(ROOT, "tfcourse")
# Command-line modules: they may import the package's heavy modules inside ``main`` (after the
# flags are parsed), so that ``--help`` stays fast.
CLI_MODULES = {
    "tfcourse.train",
    "tfcourse.tune",
    "tfcourse.cli_args",
    "tfcourse.cost.cli",
    "tfcourse.export.cli",
    "tfcourse.explain.cli",
    "tfcourse.report.cli",
    "tfcourse.numpy_mlp",
    "tfcourse.eda.cli",
    "tfcourse.predict",
}


def module_files(package_dir=PACKAGE, package="tfcourse"):
    """``{module name: path}`` for every ``.py`` file of the package (``__init__`` is the package itself)."""
    found = {}
    for folder, _, names in os.walk(package_dir):
        for name in names:
            if not name.endswith(".py"):
                continue
            parts = os.path.relpath(os.path.join(folder, name), package_dir)[:-3].split(os.sep)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join([package] + parts)] = os.path.join(folder, name)
    return found


def imports_of(path, module, modules):
    """The package modules ``module`` imports: ``(target, line, top_level)`` for each import statement.

    ``from X import Y`` names module ``X.Y`` when that is a module, else ``X``; relative imports are
    resolved against ``module``'s package."""
    tree = ast.parse(open(path, encoding="utf-8").read(), path)
    is_package = os.path.basename(path) == "__init__.py"
    top = {id(node) for node in tree.body}
    found = []
    for node in ast.walk(tree):
        targets = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".") if is_package else module.split(".")[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]
        for target in targets:
            while target and target not in modules:  # "tfcourse.models.layers.X" -> its module
                target = target.rpartition(".")[0]
            if target and target != module:
                found.append((target, node.lineno, id(node) in top))
    return found


def import_graph():
    modules = module_files()
    return {name: imports_of(path, name, modules) for name, path in modules.items()}


def find_cycle(graph):
    """One cycle of ``graph`` (``{node: [(target, ...), ...]}``) as a list of nodes, or ``None``."""
    state = {}

    def visit(node, stack):
        state[node] = "open"
        stack.append(node)
        for target, *_ in graph.get(node, []):
            if state.get(target) == "open":
                return stack[stack.index(target) :] + [target]
            if target not in state:
                cycle = visit(target, stack)
                if cycle:
                    return cycle
        state[node] = "done"
        stack.pop()
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node, [])
            if cycle:
                return cycle
    return None


def test_the_package_has_no_import_cycle():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_a_package_face_does_not_count_as_a_cycle_but_a_real_loop_does():
    # A sub-module that imports a sibling through its package, as tfcourse.explain.gallery does.
    graph = {"p": [("p.a", 1, True)], "p.a": [("p.b", 1, True)], "p.b": []}
    assert find_cycle(graph) is None
    graph["p.b"] = [("p.a", 3, False)]  # a function-local import back up: still a cycle
    assert find_cycle(graph) == ["p.a", "p.b", "p.a"]


def test_the_cycle_finder_reads_function_local_imports(tmp_path):
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "low.py").write_text("def helper():\n    from pkg import high\n    return high\n")
    (package / "high.py").write_text("from pkg.low import helper\n")
    modules = module_files(str(package), "pkg")
    graph = {name: imports_of(path, name, modules) for name, path in modules.items()}
    assert find_cycle(graph) in (["pkg.high", "pkg.low", "pkg.high"], ["pkg.low", "pkg.high", "pkg.low"])


def test_library_modules_import_the_package_at_the_top():
    late = [
        f"{module}:{line} imports {target}"
        for module, edges in import_graph().items()
        if module not in CLI_MODULES
        for target, line, top in edges
        if not top
    ]
    assert late == []


@pytest.mark.slow
@pytest.mark.parametrize(
    "command",
    [
        "tfcourse.train",
        "tfcourse.tune",
        "tfcourse.cost",
        "tfcourse.export",
        "tfcourse.explain",
        "tfcourse.report",
        "tfcourse.numpy_mlp",
    ],
)
def test_help_does_not_load_tensorflow(command):
    probe = (
        f"import runpy, sys; sys.argv = ['{command}', '--help']\n"
        f"try:\n    runpy.run_module('{command}', run_name='__main__', alter_sys=True)\n"
        "except SystemExit:\n    pass\n"
        "print('LOADED' if 'tensorflow' in sys.modules or 'keras' in sys.modules else 'LIGHT', file=sys.stderr)"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT)
    assert "usage:" in done.stdout and done.stderr.strip().splitlines()[-1] == "LIGHT", done.stderr[-2000:]
