"""Avro schemas of a RADAR-base cluster, by Confluent schema id: a Schema Registry or a directory of ``.avsc``.

A RADAR-base cluster stores keys and values in the Confluent wire format: each
message names its schema by a 4-byte id that the Schema Registry assigned. Two
ways to resolve an id:

* **Registry** (``schema_registry_url``): confluent-kafka's
  ``SchemaRegistryClient`` fetches ``GET /schemas/ids/{id}`` once per id and
  caches it. TLS and basic-auth settings come from the same security settings
  as the Kafka clients (:meth:`phenoflow.core.config.Settings.registry_config`).
* **Directory** (``radar_schemas_dir``, e.g. RADAR-Schemas' ``commons/``): every
  ``*.avsc`` below it is parsed with fastavro, resolving named types across files
  (RADAR schemas reference each other, e.g. enums declared in one file). The ids
  come from ``ids.json`` in that directory when it exists — ``{"<id>": "<full
  record name>"}``, which an operator exports once from the registry the
  producers used (``curl $REGISTRY/schemas/ids/<id>``; the ids the cluster's data
  carries are only known there). Without ``ids.json`` an id is derived by a fixed
  rule, :func:`derived_id`: the first 31 bits of SHA-256 of the schema's Avro
  Parsing Canonical Form. Producers that have no registry (phenoflow's tests and
  benchmarks, a lab setup) use the same rule via :meth:`SchemaStore.id_of`.
"""

from __future__ import annotations

import hashlib
import json
import threading
from pathlib import Path
from typing import Any, cast

from fastavro import parse_schema
from fastavro.schema import SchemaParseException, UnknownType, to_parsing_canonical_form

from phenoflow.core.errors import UserError

__all__ = ["SchemaStore", "derived_id"]

#: File in a schema directory mapping registry ids to full record names.
IDS_FILE = "ids.json"


def derived_id(parsed: dict[str, Any]) -> int:
    """Schema id by the fixed rule: first 31 bits of SHA-256(Parsing Canonical Form) (positive int32)."""
    digest = hashlib.sha256(to_parsing_canonical_form(parsed).encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFF_FFFF


def _load_dir(root: Path) -> dict[str, dict[str, Any]]:
    """Parse every ``*.avsc`` below ``root``; full record name → parsed schema."""
    files = sorted(root.rglob("*.avsc"))
    if not files:
        raise UserError(f"no .avsc files under {root} — point radar_schemas_dir at RADAR-Schemas' commons/ folder")
    raw: dict[Path, Any] = {}
    for f in files:
        try:
            raw[f] = json.loads(f.read_text())
        except (OSError, ValueError) as exc:
            raise UserError(f"schema file {f} is not readable JSON ({exc}) — fix or remove it") from None
    named: dict[str, Any] = {}
    parsed: dict[str, dict[str, Any]] = {}
    pending = list(raw)
    # Files reference named types of other files; parse in rounds until nothing new resolves.
    while pending:
        left: list[Path] = []
        errors: dict[Path, str] = {}
        for f in pending:
            try:
                schema = parse_schema(raw[f], named_schemas=named)
            except UnknownType as exc:
                left.append(f)
                errors[f] = f"unknown type {exc.name}"
                continue
            except SchemaParseException as exc:
                raise UserError(f"schema file {f} is not a valid Avro schema ({exc}) — fix or remove it") from None
            if isinstance(schema, dict) and "name" in schema:
                parsed[schema["name"]] = schema
        if len(left) == len(pending):
            f = left[0]
            raise UserError(f"schema file {f}: {errors[f]} — add the .avsc that defines it to {root}")
        pending = left
    return parsed


class SchemaStore:
    """Parsed Avro schemas by schema id, from a directory of ``.avsc`` files and/or a Schema Registry."""

    def __init__(self, by_name: dict[str, dict[str, Any]], ids: dict[int, str], registry: Any = None) -> None:
        self.by_name = by_name
        self._by_id: dict[int, dict[str, Any] | None] = {i: by_name[n] for i, n in ids.items() if n in by_name}
        self._ids = {n: i for i, n in ids.items()}
        self._registry = registry
        self._lock = threading.Lock()

    @classmethod
    def from_dir(cls, root: Path) -> "SchemaStore":
        """All schemas below ``root``; ids from ``root/ids.json`` or :func:`derived_id`."""
        if not root.is_dir():
            raise UserError(f"schema directory {root} not found — set radar_schemas_dir to RADAR-Schemas' commons/ "
                            "or set schema_registry_url")
        by_name = _load_dir(root)
        ids_path = root / IDS_FILE
        if ids_path.exists():
            try:
                ids = {int(k): str(v) for k, v in json.loads(ids_path.read_text()).items()}
            except (OSError, ValueError, AttributeError) as exc:
                raise UserError(f"{ids_path} is not a JSON object {{\"id\": \"record name\"}} ({exc}) — fix it") from None
            unknown = sorted(set(ids.values()) - set(by_name))
            if unknown:
                raise UserError(f"{ids_path} names {unknown[0]}, which no .avsc under {root} defines — add its schema")
        else:
            ids = {derived_id(s): n for n, s in by_name.items()}
        return cls(by_name, ids)

    @classmethod
    def from_registry(cls, conf: dict[str, str], fallback_dir: Path | None = None) -> "SchemaStore":
        """Schemas fetched from a Schema Registry (``conf`` as for ``SchemaRegistryClient``)."""
        from confluent_kafka.schema_registry import SchemaRegistryClient

        base = cls.from_dir(fallback_dir) if fallback_dir is not None else cls({}, {})
        base._registry = SchemaRegistryClient(conf)
        return base

    def get(self, schema_id: int) -> dict[str, Any] | None:
        """The parsed schema of ``schema_id``; None when no source knows it."""
        try:
            return self._by_id[schema_id]
        except KeyError:
            pass
        if self._registry is None:
            return None
        with self._lock:
            if schema_id not in self._by_id:
                self._by_id[schema_id] = self._fetch(schema_id)
        return self._by_id[schema_id]

    def _fetch(self, schema_id: int) -> dict[str, Any] | None:
        from confluent_kafka.schema_registry.error import SchemaRegistryError

        try:
            schema = self._registry.get_schema(schema_id)
        except SchemaRegistryError as exc:
            if exc.http_status_code == 404:
                return None
            # Not the record's fault: stop rather than dead-letter every record as "unknown id".
            raise RuntimeError(f"Schema Registry error for id {schema_id}: HTTP {exc.http_status_code} "
                               f"{exc.error_message} — check schema_registry_url and its credentials") from None
        except Exception as exc:  # noqa: BLE001 - network errors of httpx and friends
            raise RuntimeError(f"Schema Registry unreachable ({type(exc).__name__}) — check schema_registry_url "
                               "and its TLS settings") from None
        parsed = parse_schema(json.loads(schema.schema_str), named_schemas={})
        if isinstance(parsed, dict) and "name" in parsed:
            self.by_name.setdefault(parsed["name"], parsed)
        return cast(dict[str, Any], parsed)  # a registered value or key schema is an Avro record

    def id_of(self, name: str) -> int:
        """The id of the record named ``name`` (full name, e.g. ``org.radarcns.kafka.ObservationKey``)."""
        if name in self._ids:
            return self._ids[name]
        raise KeyError(f"no id known for schema {name}")

    def schema(self, name: str) -> dict[str, Any]:
        """The parsed schema of the record named ``name``."""
        return self.by_name[name]
