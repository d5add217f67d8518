"""Clinician live view (``phenoflow dashboard``): cohort, participant (seed Fig. 4) and alert inbox pages.

``view`` holds the bounded state (pure), ``words`` translates model feature names,
``follower`` reads the topics, ``web`` is the Starlette app, ``server`` wires them up.
See docs/dashboard.md.
"""

from __future__ import annotations

from typing import Any

__all__ = ["serve"]


def serve(*args: Any, **kwargs: Any) -> None:
    """Run the dashboard in the foreground (see :func:`phenoflow.dashboard.server.serve`)."""
    from phenoflow.dashboard.server import serve as _serve

    _serve(*args, **kwargs)
