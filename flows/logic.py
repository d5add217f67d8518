"""Bytewax adapter for operator states: one :class:`OperatorLogic` drives any :class:`OperatorState`."""

from __future__ import annotations

import time
from typing import Any, Callable, Generic, Iterable, Tuple, TypeVar

from bytewax.operators import StatefulBatchLogic

from phenoflow.core.state import OperatorState

__all__ = ["OperatorLogic"]

S = TypeVar("S", bound=OperatorState)


class OperatorLogic(StatefulBatchLogic[Any, Any, Any], Generic[S]):
    """Runs an operator state on whole Bytewax batches.

    The state gets each batch at once (one watermark check per batch instead of
    per event). ``emit`` turns what an update returned into output items;
    ``wall_clock`` passes ``now=time.time()`` (see HourlyAggregator.watermark).
    """

    def __init__(self, state: S, emit: Callable[[Any], Iterable[Any]] | None = None,
                 *, wall_clock: bool = False) -> None:
        self.state = state
        self.emit: Callable[[Any], Iterable[Any]] = emit or (lambda result: result)
        self.wall_clock = wall_clock

    def on_batch(self, values: list[Any]) -> Tuple[Iterable[Any], bool]:
        """Bytewax hook: update the state with one batch of a key's values; emit what it returns."""
        now = time.time() if self.wall_clock else None
        return list(self.emit(self.state.update_batch(values, now))), StatefulBatchLogic.RETAIN

    def on_eof(self) -> Tuple[Iterable[Any], bool]:
        """Bytewax hook at end of input: flush the state's open windows."""
        return list(self.state.flush()), StatefulBatchLogic.RETAIN

    def snapshot(self) -> S:
        """Bytewax hook: the state's independent copy for the recovery store."""
        # Bytewax needs an immutable snapshot.
        return self.state.snapshot()
