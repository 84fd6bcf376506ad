"""The package's shape (issues 15 and 27). The layers and the absence of import cycles are import-linter's
contracts in setup.cfg (tests/test_architecture.py runs them); this file checks what they do not: the
library never imports the CLI (cli/, outside maskmodel/), no module uses another module's private names, every subpackage ships in the wheel, and the public names
stay where users find them."""

import ast
import configparser
import importlib
import pkgutil
from pathlib import Path

from helpers import ROOT

PACKAGE = ROOT / "maskmodel"


def _modules() -> dict[str, Path]:
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        modules[name.removesuffix(".__init__")] = path
    return modules


def _private_imports(name: str, path: Path, modules: dict[str, Path]) -> list[str]:
    """`module.name` of every private name a file imports from another maskmodel module."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "maskmodel":
            found += [f"{node.module}.{alias.name}" for alias in node.names if alias.name.startswith("_")
                      and f"{node.module}.{alias.name}" not in modules and node.module != name]
    return found


def test_no_private_import_across_modules():
    modules = _modules()
    private = [f"{name} imports {target}" for name, path in modules.items()
               for target in _private_imports(name, path, modules)]
    assert private == []


def test_the_library_never_imports_the_cli():
    """cli/ (installed as maskmodel.cli) is the top of the stack; import-linter reads only maskmodel/."""
    found = []
    for name, path in _modules().items():
        if name == "maskmodel.__main__":  # `python -m maskmodel` is the CLI's entry point
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets = ([node.module or ""] if isinstance(node, ast.ImportFrom)
                       else [alias.name for alias in node.names] if isinstance(node, ast.Import) else [])
            found += [f"{name} imports {target}" for target in targets if target.startswith("maskmodel.cli")]
    assert found == []


def test_every_subpackage_is_packaged():
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    listed = set(config["options"]["packages"].split())
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in PACKAGE.rglob("__init__.py")}
    assert found | {"maskmodel.cli", "maskmodel.weights"} == listed  # both mapped by package_dir


def test_public_names_are_importable_and_annotate_is_the_function():
    import maskmodel

    for name in set(maskmodel.__all__) - {"build_model"}:  # build_model imports Keras: test_builder uses it
        assert getattr(maskmodel, name) is not None, name
    for module in pkgutil.walk_packages(maskmodel.__path__, "maskmodel."):  # the runtime: no Keras here
        if not module.name.startswith("maskmodel.training") and not module.name.endswith("__main__"):
            importlib.import_module(module.name)  # no subpackage or module shadows a public name
    from maskmodel import AnnotateSettings, DetectorConfig, annotate, load

    assert callable(annotate) and annotate.__module__ == "maskmodel.batch.run"
    assert maskmodel.annotate is annotate and maskmodel.load is load and load.__module__ == "maskmodel.loading"
    assert AnnotateSettings("out").detector == DetectorConfig()
