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
seeded by HMAC-SHA256(key, "phenoflow.place-frame" ␟ participant), where the key
is the study's pseudonym secret (:func:`phenoflow.core.pseudonym.study_secret`;
the prefix keeps this use of the key apart from the pseudonyms themselves). The
same key and participant give the same frame, so a replay or a restart from a
recovery snapshot continues in it (the stage stays deterministic); neither R nor
the key is ever stored: a :class:`PrivateFrame` refuses to be pickled, and the
hourly aggregator drops it and the key from its snapshot and gets the key back
from the flow on restart.

What it protects against: someone who reads snapshots or state dumps — even
knowing this scheme and the participant id, which is in every topic — gets
coordinates that are not the participant's places and cannot rotate them back
without the study's secret. What it does not:

* whoever holds the secret (key file or ``pseudonym_secret``) can recompute R:
  keep the key away from the recovery directories;
* the rotation hides where places are, not their shape: distances between fixes,
  place sizes and the movement pattern are kept exactly (that is the point), and
  with enough outside knowledge (say, the distance between home and work of a
  known person) a shape could be matched; and one known raw fix together with
  its rotated image narrows R down;
* a weak ``pseudonym_secret`` (a guessable phrase) can be brute-forced against
  the snapshots' salt id; the generated key (32 random bytes) cannot.
"""

from __future__ import annotations

import hashlib
import hmac
import math

import numpy as np

from phenoflow.core.errors import UserError

__all__ = ["FRAME_DOMAIN", "PrivateFrame"]

#: Domain of the frame seed's HMAC message: never the message of a pseudonym (``project ␟ user``).
FRAME_DOMAIN = "phenoflow.place-frame"


class PrivateFrame:
    """The rotation of one participant's fixes into their private frame (degrees in, degrees out).

    ``key`` is the study's pseudonym secret; an empty key is a :class:`~phenoflow.core.errors.UserError`.
    """

    def __init__(self, participant: str, key: bytes) -> None:
        if not key:
            raise UserError("the private place frame needs the study's pseudonym secret — "
                            "set pseudonym_secret or pseudonym_key_file")
        mac = hmac.new(key, f"{FRAME_DOMAIN}\x1f{participant}".encode(), hashlib.sha256).digest()
        seed = int.from_bytes(mac)
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
        raise TypeError("a PrivateFrame is derived from the study's secret and must never be pickled")

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
