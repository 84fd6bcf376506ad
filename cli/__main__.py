"""`python -m cli` runs the `maskmodel` command."""

from cli.main import main

main()
