"""The package's shape: no import cycles (every import, also those inside functions), short modules
that say what they are for, and a top level that holds only the front door and the verbs."""

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "src" / "cnnlab"


def module_name(path: Path) -> str:
    parts = path.relative_to(PKG.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in PKG.rglob("*.py")}


def is_module(name: str) -> bool:
    return name in MODULES


def imports_of(name: str) -> set[str]:
    """cnnlab modules imported anywhere in module `name` (top level or inside functions)."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative import
                base = ".".join(
                    package.split(".")[: len(package.split(".")) - node.level + 1] + [base]
                ).strip(".")
            for a in node.names:
                found.add(f"{base}.{a.name}" if is_module(f"{base}.{a.name}") else base)
    return {m for m in found if is_module(m) and m != name}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(n: str) -> list[str] | None:
        state[n] = 1
        stack.append(n)
        for m in sorted(graph[n]):
            if state.get(m) == 1:
                return stack[stack.index(m) :] + [m]
            if m not in state and (cycle := visit(m)):
                return cycle
        stack.pop()
        state[n] = 2
        return None

    for n in sorted(graph):
        if n not in state and (cycle := visit(n)):
            return cycle
    return None


def test_no_import_cycles():
    graph = {name: imports_of(name) for name in MODULES}
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_cycle_finder_finds_a_planted_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


@pytest.mark.parametrize("name", sorted(MODULES))
def test_module_is_short_and_says_what_it_is_for(name):
    path = MODULES[name]
    lines = path.read_text().splitlines()
    assert len(lines) <= 400, f"{path.relative_to(PKG)} has {len(lines)} lines (split it by topic)"
    if name != "cnnlab.__main__":
        assert ast.get_docstring(ast.parse(path.read_text())), f"{path.relative_to(PKG)} has no docstring"


def test_top_level_holds_only_the_front_door_and_the_verbs():
    top = sorted(p.stem for p in PKG.glob("*.py"))
    assert len(top) <= 13, top
    assert {"data", "models", "training", "inside", "serve"} <= {p.name for p in PKG.iterdir() if p.is_dir()}


def test_no_test_hooks_in_the_package():
    """Tests shape the package from the outside (e.g. tests/slow_steps.py); no switch for them in src/."""
    found = [
        p.relative_to(PKG).as_posix()
        for p in PKG.rglob("*")
        if p.is_file() and b"CNNLAB_TEST" in p.read_bytes()
    ]
    assert found == []


def test_commands_are_a_layer_over_the_library():
    """Every command is a module of cnnlab.commands with add_arguments and run; no library module holds
    argparse's add_argument calls (the CLI and the Python API call the same library functions)."""
    import importlib

    from cnnlab.cli import COMMANDS

    for name, (module, _help) in COMMANDS.items():
        assert module.startswith("cnnlab.commands."), name
        loaded = importlib.import_module(module)
        assert callable(loaded.add_arguments) and callable(loaded.run), name
    flags = [
        name
        for name, path in MODULES.items()
        if not name.startswith("cnnlab.commands") and ".add_argument(" in path.read_text()
    ]
    # the front door (--version, --lang), TrainConfig's fields as flags (for commands.train), a dev tool
    assert sorted(flags) == ["cnnlab.cli", "cnnlab.i18n.extract", "cnnlab.training.flags"]
