"""What a per-participant operator state offers the flows: batch updates, a flush at end of input, snapshots.

Operators (``phenoflow.operators``) implement :class:`OperatorState` without
importing Bytewax; ``phenoflow.flows.logic.OperatorLogic`` adapts any of them to
a Bytewax stateful step, and recovery stores what :meth:`~OperatorState.snapshot`
returns.
"""

from __future__ import annotations

import pickle
from typing import Any, ClassVar, Iterable, Protocol, Self, runtime_checkable

from phenoflow.core.errors import UserError

__all__ = ["OperatorState", "PickleSnapshot", "StateVersionError", "check_state_version"]

#: Key under which a pickled state records its class's ``STATE_VERSION``.
VERSION_KEY = "_state_version"


class StateVersionError(UserError):
    """A recovery snapshot was written by an older (or newer) layout of a state class.

    Resuming would run on state the code no longer understands, so it is refused.
    The flows turn this into one line naming the recovery directory and the fix.
    """

    def __init__(self, cls: str, found: int, expected: int) -> None:
        super().__init__(f"recovery snapshot of {cls} has state version {found}, this phenoflow needs "
                         f"{expected} — delete the recovery directory or run with `phenoflow run "
                         "--recovery NEW_DIR` (docs/deploy.md, \"Reset recovery\")")
        self.short = f"{cls} state version {found}, expected {expected}"
        self.cls, self.found, self.expected = cls, found, expected


def check_state_version(cls: type, state: dict[str, Any]) -> None:
    """Raise :class:`StateVersionError` unless ``state`` (a pickled ``__dict__``) has ``cls.STATE_VERSION``.

    A state pickled before versions existed has no version key and counts as version 0.
    """
    found = state.get(VERSION_KEY, 0)
    expected = getattr(cls, "STATE_VERSION", 0)
    if found != expected:
        raise StateVersionError(cls.__name__, int(found), int(expected))


@runtime_checkable
class OperatorState(Protocol):
    """A keyed operator state as the flows drive it."""

    def update_batch(self, values: list[Any], now: float | None = None) -> Any:
        """Take a batch of one key's inputs in arrival order; return what to emit (shape per operator)."""
        ...

    def flush(self) -> Iterable[Any]:
        """End of input: close every open window and return its outputs."""
        ...

    def snapshot(self) -> Self:
        """An independent copy for a recovery snapshot (later updates must not change it)."""
        ...


class PickleSnapshot:
    """Mixin: :meth:`snapshot` as a pickle round trip (≈ 4× cheaper than ``copy.deepcopy`` here).

    Also versions the pickled state: ``__getstate__`` records the class's
    ``STATE_VERSION`` and ``__setstate__`` refuses any other
    (:class:`StateVersionError`). Bump ``STATE_VERSION`` whenever the meaning or
    layout of a state's attributes changes, so an old recovery snapshot can never
    be resumed silently with wrong state.
    """

    #: Layout version of this class's pickled state; bump on every incompatible change.
    STATE_VERSION: ClassVar[int] = 1

    def __getstate__(self) -> dict[str, Any]:
        """The instance dict plus this class's state version."""
        return {**self.__dict__, VERSION_KEY: type(self).STATE_VERSION}

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Restore a pickled state after checking its version."""
        check_state_version(type(self), state)
        self.__dict__.update({k: v for k, v in state.items() if k != VERSION_KEY})

    def snapshot(self) -> Self:
        """An independent copy of this state, exactly what a recovery snapshot restores."""
        return pickle.loads(pickle.dumps(self, protocol=pickle.HIGHEST_PROTOCOL))
