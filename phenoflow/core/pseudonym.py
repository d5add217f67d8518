"""Keyed pseudonyms for participant ids: raw study ids never enter phenoflow's topics or files.

A RADAR-base, AWARE or Beiwe participant is identified by raw ids
(``projectId``/``userId``, ``device_id``, Beiwe's participant folder). phenoflow
replaces them, at the first stage that sees them, with

    p = "p" + base32(HMAC-SHA256(secret, project ␟ user))[:20]   (lower case)

a 21-character id that fits the contract's ``[A-Za-z0-9_.-]{1,64}``. The same
secret gives the same pseudonym for the live RADAR-base source and for every
``phenoflow import``, so a study's live and historical data join; without the
secret the mapping cannot be reversed or recomputed (HMAC, RFC 2104). The
secret itself is never printed: reports carry only its *salt id*, the first
12 hex digits of SHA-256(secret), so two reports can be checked for using the
same key (recovery snapshots keep it too, so a restart under another key is
refused).

The secret comes from the setting ``pseudonym_secret`` (config file or
``PHENOFLOW_PSEUDONYM_SECRET``), else from the file ``pseudonym_key_file``
(default ``.phenoflow/pseudonym.key``), which :func:`load_or_create_secret`
creates with a random 32-byte key (mode 0600) the first time;
:func:`study_secret` is that lookup for a run's settings, the one every command
and flow uses. The same secret also keys each participant's private place frame
(:mod:`phenoflow.operators.places.frame`, domain-separated), so GPS state in
recovery snapshots cannot be rotated back without it.

>>> key = b"0" * 32
>>> pseudonymize("radar-test", "072ddb22-82ef-4b81-8460-41ab096b54bb", key)
'pz6s6kp6qpkscx2myledc'
>>> salt_id(key)
'84e0c0eafaa9'
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import tempfile
from pathlib import Path
from typing import Callable

from phenoflow.core.config import Settings
from phenoflow.core.errors import UserError

__all__ = ["DEFAULT_KEY_FILE", "load_or_create_secret", "memoised_pseudonyms", "pseudonymize", "salt_id",
           "study_secret"]

#: Where a generated secret is kept when none is configured.
DEFAULT_KEY_FILE = Path(".phenoflow") / "pseudonym.key"

_SEP = "\x1f"  # unit separator: cannot occur in a project or user id, so (a, bc) ≠ (ab, c)


def pseudonymize(project: str, user: str, secret: bytes) -> str:
    """The participant id for raw ``(project, user)`` under ``secret`` (deterministic)."""
    if not secret:
        raise UserError("pseudonym secret is empty — set pseudonym_secret or delete the empty key file")
    digest = hmac.new(secret, f"{project}{_SEP}{user}".encode(), hashlib.sha256).digest()
    return "p" + base64.b32encode(digest).decode("ascii")[:20].lower()


def memoised_pseudonyms(secret: bytes) -> Callable[[str, str], str]:
    """``(project, user) → participant`` under ``secret``, one HMAC per distinct raw id (hot paths)."""
    cache: dict[tuple[str, str], str] = {}

    def pseudonym(project: str, user: str) -> str:
        hit = cache.get((project, user))
        if hit is None:
            hit = cache[(project, user)] = pseudonymize(project, user, secret)
        return hit

    return pseudonym


def salt_id(secret: bytes) -> str:
    """A short, non-reversible fingerprint of the secret, safe to print in reports."""
    return hashlib.sha256(secret).hexdigest()[:12]


def load_or_create_secret(configured: str = "", key_file: Path | None = None) -> tuple[bytes, bool]:
    """The pseudonym secret and whether it was just created.

    ``configured`` (the ``pseudonym_secret`` setting) wins; else the key file is
    read, or created with 32 random bytes (hex) when it does not exist yet.
    """
    if configured:
        return configured.encode(), False
    path = key_file or DEFAULT_KEY_FILE
    try:
        text = path.read_text().strip()
    except FileNotFoundError:
        text = ""
    except OSError as exc:
        raise UserError(f"cannot read pseudonym key file {path} ({exc.strerror}) — fix its permissions") from None
    if text:
        return text.encode(), False
    key = secrets.token_hex(32)
    if not _publish(path, key + "\n"):  # another process created it first: use theirs
        text = path.read_text().strip()
        if not text:
            raise UserError(f"pseudonym key file {path} is empty — delete it or set pseudonym_secret")
        return text.encode(), False
    return key.encode(), True


def _publish(path: Path, text: str) -> bool:
    """Create ``path`` (mode 0600) holding ``text`` unless it exists; False if it existed.

    The text goes to a private temporary file that is then hard-linked into place:
    link() fails if the key file exists, so processes starting together (a
    cluster's ``phenoflow run -i …``) agree on one key and nobody reads a
    half-written one. File systems without hard links get an exclusive create.
    """
    def fail(exc: OSError) -> UserError:
        return UserError(f"cannot create pseudonym key file {path} ({exc.strerror}) — "
                         "set pseudonym_secret or make the folder writable")

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".pseudonym-", suffix=".tmp")  # mode 0600
    except OSError as exc:
        raise fail(exc) from None
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
    except OSError as exc:
        os.unlink(tmp)
        raise fail(exc) from None
    try:
        os.link(tmp, path)
        return True
    except FileExistsError:
        return False
    except OSError:
        try:  # no hard links here (some network and FUSE file systems)
            out = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return False
        except OSError as exc:
            raise fail(exc) from None
        with os.fdopen(out, "w") as fh:
            fh.write(text)
        return True
    finally:
        os.unlink(tmp)


def study_secret(settings: Settings) -> tuple[bytes, bool]:
    """The study's secret from ``settings`` (``pseudonym_secret``, else the key file) and whether it was just created.

    The one lookup shared by the importers, the RADAR-base source, ``phenoflow run``
    and the hourly stage's place frame, so they all use the same key.
    """
    return load_or_create_secret(settings.pseudonym_secret, Path(settings.pseudonym_key_file))
