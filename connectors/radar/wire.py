"""Confluent wire format: byte 0 = magic 0, bytes 1–4 = schema id (big-endian), then Avro binary.

Decoding uses fastavro's ``schemaless_reader`` with the schema the id names
(:class:`~phenoflow.connectors.radar.schemas.SchemaStore`). Every failure is a
:class:`WireError` whose message says what was wrong — wrong magic byte,
unknown schema id, truncated Avro, unknown enum index, trailing bytes — so the
flow can dead-letter the record with that reason.
"""

from __future__ import annotations

import io
import struct
from typing import Any

from fastavro import schemaless_reader, schemaless_writer

from phenoflow.connectors.radar.schemas import SchemaStore

__all__ = ["MAGIC", "WireError", "decode", "encode"]

MAGIC = 0
_HEADER = struct.Struct(">bI")


class WireError(ValueError):
    """A message that is not a decodable Confluent-framed Avro record; the text is the reason."""


def decode(data: bytes | None, store: SchemaStore, what: str = "value") -> tuple[str, dict[str, Any]]:
    """``(full record name, record)`` of one framed message; raises :class:`WireError`."""
    if data is None:
        raise WireError(f"{what} is null")
    if len(data) < 5:
        raise WireError(f"{what} of {len(data)} bytes is shorter than the 5-byte Confluent header")
    if data[0] != MAGIC:
        raise WireError(f"{what} has wrong magic byte {data[0]} (Confluent wire format starts with 0)")
    schema_id = int.from_bytes(data[1:5], "big")
    schema = store.get(schema_id)
    if schema is None:
        raise WireError(f"{what} has unknown schema id {schema_id} (not in the registry or schema directory)")
    buf = io.BytesIO(data)
    buf.seek(5)
    try:
        record = schemaless_reader(buf, schema, None)
    except (EOFError, struct.error):
        raise WireError(f"{what}: truncated Avro for schema id {schema_id} ({len(data) - 5} bytes of body)") from None
    except IndexError:
        raise WireError(f"{what}: unknown enum or union index for schema id {schema_id}") from None
    except (ValueError, TypeError, UnicodeDecodeError, OverflowError) as exc:
        raise WireError(f"{what}: undecodable Avro for schema id {schema_id} ({type(exc).__name__})") from None
    if buf.tell() != len(data):
        raise WireError(f"{what}: {len(data) - buf.tell()} trailing bytes after the Avro record (schema id {schema_id})")
    name = schema.get("name", "") if isinstance(schema, dict) else ""
    if not isinstance(record, dict):
        raise WireError(f"{what}: schema id {schema_id} is not a record schema")
    return name, record


def encode(schema_id: int, schema: dict[str, Any], record: dict[str, Any]) -> bytes:
    """Frame ``record`` as Confluent wire format (tests, benchmarks, the plain baseline)."""
    buf = io.BytesIO()
    buf.write(_HEADER.pack(MAGIC, schema_id))
    schemaless_writer(buf, schema, record)
    return buf.getvalue()
