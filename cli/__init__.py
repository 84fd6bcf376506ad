"""The `maskmodel` command-line tool (Click): one thin module per command."""
