"""The architecture as a checked contract (issue 27): import-linter's contracts in setup.cfg (the layers,
the runtime without training, TensorFlow or Keras, no import cycles) hold. docs/architecture.md draws them."""

import subprocess
import sys

from helpers import ROOT

LINT_IMPORTS = "from importlinter.cli import lint_imports_command; lint_imports_command()"  # `lint-imports`


def test_import_contracts_are_kept():
    result = subprocess.run([sys.executable, "-c", LINT_IMPORTS, "--no-cache", "--no-logo"], cwd=ROOT,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout, result.stdout
