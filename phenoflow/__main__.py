"""``python -m phenoflow`` = the ``phenoflow`` command."""

from phenoflow.cli import main

main()
