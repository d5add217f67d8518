"""What a per-participant operator state offers the flows: batch updates, a flush at end of input, snapshots.

Operators (``phenoflow.operators``) implement :class:`OperatorState` without
importing Bytewax; ``phenoflow.flows.logic.OperatorLogic`` adapts any of them to
a Bytewax stateful step, and recovery stores what :meth:`~OperatorState.snapshot`
returns.
"""

from __future__ import annotations

import pickle
from typing import Any, Iterable, Protocol, Self, runtime_checkable

__all__ = ["OperatorState", "PickleSnapshot"]


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
    """Mixin: :meth:`snapshot` as a pickle round trip (≈ 4× cheaper than ``copy.deepcopy`` here)."""

    def snapshot(self) -> Self:
        """An independent copy of this state, exactly what a recovery snapshot restores."""
        return pickle.loads(pickle.dumps(self, protocol=pickle.HIGHEST_PROTOCOL))
