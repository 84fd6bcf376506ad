"""`python -m maskmodel` runs the `maskmodel` command."""

from maskmodel.cli.main import main

main(prog_name="maskmodel")
