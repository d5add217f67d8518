"""``python -m phenoflow`` = the ``phenoflow`` command."""

from phenoflow.cli.main import main

__all__: list[str] = []

main()
