"""The package's shape: its modules import each other without a cycle (read from the source with
``ast``, function-local imports included); the rooms of ``tfcourse/`` (its top-level files and folders)
stand on the floors ``docs/layout.md`` draws, every import running down to a lower floor and nothing
importing a command; library modules name the package's own modules at the top, and ``--help`` does
not load TensorFlow."""

import ast
import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = os.path.join(ROOT, "tfcourse")
# Command-line modules: they may import the package's heavy modules inside ``main`` (after the
# flags are parsed), so that ``--help`` stays fast.
COMMANDS = ("train", "tune", "predict", "eda", "explain", "report", "export", "cost", "numpy_mlp")
CLI_MODULES = {f"tfcourse.{command}" for command in COMMANDS} | {"tfcourse.cli"}
LAYOUT = os.path.join(ROOT, "docs", "layout.md")


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
    # A sub-module that imports a sibling through its package, as tfcourse.pages.gallery does.
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
@pytest.mark.parametrize("command", [f"tfcourse.{command}" for command in COMMANDS])
def test_help_does_not_load_tensorflow(command):
    probe = (
        f"import runpy, sys; sys.argv = ['{command}', '--help']\n"
        f"try:\n    runpy.run_module('{command}', run_name='__main__', alter_sys=True)\n"
        "except SystemExit:\n    pass\n"
        "print('LOADED' if 'tensorflow' in sys.modules or 'keras' in sys.modules else 'LIGHT', file=sys.stderr)"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT)
    assert "usage:" in done.stdout and done.stderr.strip().splitlines()[-1] == "LIGHT", done.stderr[-2000:]


def room_of(module):
    """The room of ``tfcourse/`` a module lives in, as ``farm-studio look`` draws it: ``jobs/`` for
    ``tfcourse.jobs.search``, ``train.py`` for ``tfcourse.train``, ``__init__.py`` for the package itself."""
    parts = module.split(".")[1:]
    if not parts:
        return "__init__.py"
    return parts[0] + "/" if os.path.isdir(os.path.join(PACKAGE, parts[0])) else parts[0] + ".py"


def room_imports(graph):
    """``{room: {room it imports: [one "module -> module" example, ...]}}``, a room's own imports left out."""
    arrows = {}
    for module, edges in graph.items():
        for target, *_ in edges:
            if room_of(module) != room_of(target):
                arrows.setdefault(room_of(module), {}).setdefault(room_of(target), []).append(f"{module} -> {target}")
    return arrows


def floors(graph):
    """Each room's floor: 1 for a room that imports no other, else one above the highest room it imports."""
    arrows = room_imports(graph)
    found = {}

    def floor(room, path=()):
        if room not in found:
            if room in path:
                raise ValueError("rooms in a circle: " + " -> ".join(path + (room,)))
            found[room] = 1 + max((floor(target, path + (room,)) for target in arrows.get(room, {})), default=0)
        return found[room]

    for module in graph:
        floor(room_of(module))
    return found


def documented_layout(path=LAYOUT):
    """The floors block of ``docs/layout.md``: ``({room: floor}, {folder room: [its .py files]})``.

    In the block a line ``floor N`` opens a floor, a line indented by two spaces names a room on it
    (``train.py``, ``jobs/``), a line indented by four names a module of the folder above it."""
    text = open(path, encoding="utf-8").read()
    block = re.search(r"```text\nfloor .*?```", text, re.S)
    assert block, f"{path} has no floors block (a ```text block whose first line is 'floor N')"
    rooms, modules, floor, folder = {}, {}, None, None
    for line in block.group(0).splitlines()[1:-1]:
        if re.match(r"floor \d+", line):
            floor = int(line.split()[1])
        elif re.match(r"  \S", line):
            room = line.split()[0]
            assert room not in rooms, f"{room} is drawn twice in {path}"
            rooms[room], folder = floor, room if room.endswith("/") else None
            if folder:
                modules[folder] = []
        elif re.match(r"    \S", line) and folder:
            modules[folder].append(line.split()[0])
    return rooms, modules


def test_every_import_runs_down_to_a_lower_documented_floor():
    graph = import_graph()
    documented, _ = documented_layout()
    upward = [
        f"{example} ({room} on floor {documented.get(room)} imports {target} on floor {documented.get(target)})"
        for room, targets in room_imports(graph).items()
        for target, examples in targets.items()
        for example in examples[:1]
        if documented.get(target, 0) >= documented.get(room, 0)
    ]
    assert upward == [], "imports that do not run down the floors of docs/layout.md:\n" + "\n".join(upward)


def test_docs_layout_draws_the_floors_the_imports_give():
    graph = import_graph()
    documented, modules = documented_layout()
    actual = floors(graph)
    wrong = {room: (documented.get(room), actual.get(room)) for room in set(documented) | set(actual)}
    wrong = {room: pair for room, pair in wrong.items() if pair[0] != pair[1]}
    assert wrong == {}, f"docs/layout.md's floors differ from the code's (room: (drawn, actual)); redraw them: {wrong}"
    for folder, listed in modules.items():
        present = sorted(name for name in os.listdir(os.path.join(PACKAGE, folder)) if name.endswith(".py"))
        assert sorted(listed) == present, f"docs/layout.md lists {folder} as {sorted(listed)}; it holds {present}"


def test_the_commands_are_on_top_and_nothing_imports_them():
    graph = import_graph()
    commands = {f"tfcourse.{command}" for command in COMMANDS}
    assert commands <= set(graph), sorted(commands - set(graph))
    importers = [
        f"{module} -> {target}" for module, edges in graph.items() for target, *_ in edges if target in commands
    ]
    assert importers == []


def test_the_layout_check_finds_a_planted_upward_import(tmp_path):
    graph = {module: list(edges) for module, edges in import_graph().items()}
    graph["tfcourse.models.cnn"] = graph["tfcourse.models.cnn"] + [("tfcourse.jobs.search", 1, True)]
    with pytest.raises(ValueError, match="rooms in a circle"):
        floors(graph)  # jobs/ imports models/: a circle now
    graph = {module: list(edges) for module, edges in import_graph().items()}
    graph["tfcourse.machine"] = graph["tfcourse.machine"] + [("tfcourse.evaluation.evaluate", 1, True)]
    assert floors(graph) != floors(import_graph())  # machine.py now stands above evaluation/: the drawing is wrong
