"""The ``phenoflow`` command line: :mod:`~phenoflow.cli.main` is the entry point."""

__all__: list[str] = []
