"""`python -m maskmodel.cli` runs the `maskmodel` command (as `python -m maskmodel` does)."""

from maskmodel.cli.main import main

main(prog_name="maskmodel")
