"""The package's shape: no import cycles (every import, also those inside functions), short modules
that say what they are for, and a top level that holds only the front door and the verbs."""

import ast
import re
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


# ---- the seams: one low layer, each fact in one place (issue 24) ---------------------------------------

LOW = {"cnnlab.errors", "cnnlab.i18n"} | {m for m in MODULES if m.startswith("cnnlab.core")}


def under(name: str, *packages: str) -> bool:
    return any(name == p or name.startswith(p + ".") for p in packages)


def test_the_low_layer_imports_nothing_above_it():
    """errors (every exit code) and core/ (sizes, autocast, atomic writes, downloads) import only each
    other and cnnlab.i18n, so every other module can import them without a cycle."""
    for name in sorted(m for m in LOW if m != "cnnlab.i18n"):
        above = sorted(imports_of(name) - LOW)
        assert not above, f"{name} imports {above}: the low layer imports nothing above it"


@pytest.mark.parametrize("package", ["cnnlab.models", "cnnlab.data"])
def test_models_and_data_import_nothing_from_inside_training_or_serve(package):
    for name in sorted(m for m in MODULES if under(m, package)):
        wrong = sorted(
            m for m in imports_of(name) if under(m, "cnnlab.inside", "cnnlab.training", "cnnlab.serve")
        )
        assert not wrong, f"{name} imports {wrong}; what both need belongs in cnnlab.core"


def assigned_names(path: Path) -> list[str]:
    """Every name assigned anywhere in a module (also in functions and classes)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
        if isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            for t in targets:
                found += [n.id for n in ast.walk(t) if isinstance(n, ast.Name)]
    return found


def test_every_exit_code_is_defined_once_in_errors():
    where: dict[str, list[str]] = {}
    for name, path in MODULES.items():
        for assigned in assigned_names(path):
            if assigned.startswith("EXIT_"):
                where.setdefault(assigned, []).append(name)
    assert where, "no EXIT_* found: the walk is broken"
    assert all(mods == ["cnnlab.errors"] for mods in where.values()), {
        k: v for k, v in where.items() if v != ["cnnlab.errors"]
    }
    from cnnlab import errors

    codes = {k: getattr(errors, k) for k in where}
    assert len(set(codes.values())) == len(codes), f"two names for one exit code: {codes}"


def test_the_exit_code_walk_finds_a_second_definition(tmp_path):
    (tmp_path / "m.py").write_text("EXIT_BAD_CHECKPOINT = 7\ndef f():\n    EXIT_X: int = 3\n")
    assert assigned_names(tmp_path / "m.py") == ["EXIT_BAD_CHECKPOINT", "EXIT_X"]


def model_name_tests(path: Path, names: set[str]) -> list[str]:
    """`x.startswith("<family>")` and `x == "<model>"` / `!=` / `in (...)` on a registered model's name."""
    prefixes = {re.match(r"[a-z]+", n).group() for n in names}
    prefixes = {p for p in prefixes if len(p) >= 3}  # "s2dnet" gives "s": a letter is no family name
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", "") in ("startswith", "removeprefix"):
            for arg in node.args:
                consts = [c.value for c in ast.walk(arg) if isinstance(c, ast.Constant)]
                if any(
                    isinstance(v, str) and len(v) >= 3 and any(n.startswith(v) for n in names) for v in consts
                ):
                    found.append(f"{path.name}:{node.lineno}")
        elif isinstance(node, ast.Compare):
            consts = [c.value for c in ast.walk(node) if isinstance(c, ast.Constant)]
            if any(isinstance(v, str) and (v in names or v in prefixes) for v in consts):
                found.append(f"{path.name}:{node.lineno}")
    return found


def registered_names() -> set[str]:
    import cnnlab.models as registry

    registry.list_models()
    return set(registry._REGISTRY) | set(registry._ALIASES)


def test_no_code_outside_models_tests_a_models_name():
    """What the rest needs to know about a model (aux heads, small form, Grad-CAM layer, weights) is on
    its registration, so nothing outside models/ asks for it by name."""
    names = registered_names()
    found = [
        hit
        for name, path in sorted(MODULES.items())
        if not under(name, "cnnlab.models")
        for hit in model_name_tests(path, names)
    ]
    assert not found, f"model-name tests outside models/: {found}"


def test_the_name_test_finder_finds_planted_ones(tmp_path):
    (tmp_path / "m.py").write_text(
        'a = cfg.model.startswith("googlenet")\nb = m == "chapter-cnn"\nc = m in ("vgg11_bn", "x")\n'
        'd = m.startswith("http")\ne = {"model": "fastnet"}\n'
    )
    assert model_name_tests(tmp_path / "m.py", registered_names()) == ["m.py:1", "m.py:2", "m.py:3"]


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
