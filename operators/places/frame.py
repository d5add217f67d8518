"""A private coordinate frame per participant: GPS fixes are rotated on the sphere before they are kept.

The hourly stage keeps location state for up to 14 days (the DBSCAN history, the
distance anchor, fixes of not-yet-emitted hours), and recovery snapshots store it
on disk. To keep raw coordinates out of that state, every fix is mapped, the moment
it enters the stage, through a rotation R of the sphere that is drawn per
participant: the unit vector u(φ, λ) = (cos φ cos λ, cos φ sin λ, sin φ) becomes
R·u, converted back to (latitude, longitude). A rotation preserves every
great-circle distance, so haversine distances, DBSCAN neighbourhoods, place
centroids and the distance filter are unchanged (up to floating-point rounding,
≈ 1e-9 m); only the ε/30 snapping grid of the DBSCAN approximation sits
elsewhere relative to the fixes, which leaves the bound of
:mod:`phenoflow.operators.places.clusters` as it is.

R is a uniformly random rotation (a unit quaternion from four normal deviates)
seeded by SHA-256 of the participant id, so a replay or a restart gives the same
frame (the stage stays deterministic) and R itself is never stored. What it
protects against: coordinates at rest (snapshots, state dumps) are not the
participant's places and do not reveal them to someone who reads the files. What
it does not: someone who knows this scheme and the participant id can recompute
R — keep recovery directories access-controlled as any study data.
"""

from __future__ import annotations

import hashlib
import math

import numpy as np

__all__ = ["PrivateFrame"]


class PrivateFrame:
    """The rotation of one participant's fixes into their private frame (degrees in, degrees out)."""

    def __init__(self, participant: str) -> None:
        seed = int.from_bytes(hashlib.sha256(f"phenoflow.place-frame\x1f{participant}".encode()).digest()[:16])
        q = np.random.default_rng(seed).standard_normal(4)
        w, x, y, z = q / np.linalg.norm(q)
        # Rotation matrix of the unit quaternion (w, x, y, z).
        self.matrix = np.array([
            [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
            [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
            [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
        ])
        self._rows = [tuple(float(v) for v in row) for row in self.matrix]

    def __getstate__(self) -> dict[str, object]:
        raise TypeError("a PrivateFrame is derived from the participant id and must never be pickled")

    def rotate(self, lat: float, lon: float) -> tuple[float, float]:
        """(latitude, longitude) in degrees of one fix in the private frame."""
        p, lam = math.radians(lat), math.radians(lon)
        c = math.cos(p)
        u = (c * math.cos(lam), c * math.sin(lam), math.sin(p))
        (a0, a1, a2), (b0, b1, b2), (c0, c1, c2) = self._rows
        x = a0 * u[0] + a1 * u[1] + a2 * u[2]
        y = b0 * u[0] + b1 * u[1] + b2 * u[2]
        z = c0 * u[0] + c1 * u[1] + c2 * u[2]
        return math.degrees(math.atan2(z, math.hypot(x, y))), math.degrees(math.atan2(y, x))
