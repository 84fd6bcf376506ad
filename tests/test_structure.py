"""The package's shape: its modules import each other without cycles and use no other module's private
names (issue 15); imports under `if TYPE_CHECKING:` are for type hints only and do not count."""

import ast
from pathlib import Path

from helpers import ROOT

PACKAGE = ROOT / "maskmodel"


def _modules() -> dict[str, Path]:
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        modules[name.removesuffix(".__init__")] = path
    return modules


def _imports(path: Path, modules: dict[str, Path]) -> list[tuple[str, str]]:
    """(module imported, name) of every maskmodel import in a file, lazy ones included."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    typing_only = {id(node) for block in ast.walk(tree) if isinstance(block, ast.If)
                   and "TYPE_CHECKING" in ast.unparse(block.test) for node in ast.walk(block)}
    found = []
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "maskmodel":
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"
                found.append((submodule, "") if submodule in modules else (node.module, alias.name))
        elif isinstance(node, ast.Import):
            found += [(alias.name, "") for alias in node.names if alias.name.split(".")[0] == "maskmodel"]
    return found


def test_no_import_cycle_and_no_private_import_across_modules():
    modules = _modules()
    graph = {name: set() for name in modules}
    private = []
    for name, path in modules.items():
        for target, imported in _imports(path, modules):
            if target in modules and target != name:
                graph[name].add(target)
            if imported.startswith("_"):
                private.append(f"{name} imports {target}.{imported}")
    assert private == []
    state: dict[str, int] = {}  # 1 on the current path, 2 done

    def visit(name: str, path: list[str]) -> None:
        state[name] = 1
        for target in sorted(graph[name]):
            assert state.get(target) != 1, "import cycle: " + " -> ".join(path[path.index(target):] + [target])
            if target not in state:
                visit(target, path + [target])
        state[name] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])


def test_public_names_are_importable_and_annotate_is_the_function():
    import importlib

    import maskmodel

    for name in set(maskmodel.__all__) - {"build_model"}:  # build_model imports Keras: test_builder uses it
        assert getattr(maskmodel, name) is not None, name
    importlib.import_module("maskmodel.batch.run")  # importing the module behind it does not shadow the function
    from maskmodel import AnnotateSettings, DetectorConfig, annotate

    assert callable(annotate) and annotate.__module__ == "maskmodel.batch.run"
    assert AnnotateSettings("out").detector == DetectorConfig()
