import subprocess
import sys

import pytest
from click.testing import CliRunner

from maskmodel.cli.main import main


def test_import_maskmodel_loads_no_tensorflow():
    code = "import sys, maskmodel; print(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("command", [[], ["annotate"], ["predict"], ["train"], ["models"], ["models", "list"],
                                     ["models", "info"], ["models", "download"], ["models", "install"],
                                     ["models", "verify"], ["evaluate"], ["evaluate", "classify"], ["evaluate", "detect"], ["export"],
                                     ["watch"]])
def test_every_command_has_fast_help(command):
    result = CliRunner().invoke(main, command + ["--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output


def test_cli_help_imports_no_tensorflow():
    code = ("import sys; from click.testing import CliRunner; from maskmodel.cli.main import main; "
            "CliRunner().invoke(main, ['train', '--help']); print('tensorflow' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
