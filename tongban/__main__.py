"""``python -m tongban`` runs the command line."""

from tongban.cli import main

main()
