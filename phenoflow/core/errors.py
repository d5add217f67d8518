"""Expected failures: one line naming the cause and the fix, never a traceback."""

from __future__ import annotations

__all__ = ["UserError"]


class UserError(Exception):
    """An expected failure the user can fix (bad flag, missing file, no broker, ...).

    The message is one line: what went wrong, then what to do about it, e.g.
    ``"no broker at localhost:9092 — start one with `phenoflow broker` or pass --bootstrap"``.
    The CLI prints it and exits with ``exit_code``.
    """

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code
