"""SchemaStore against the Schema Registry REST API through confluent-kafka's real client.

No Schema Registry (a Java service) can run here, so a minimal HTTP server
answers the one endpoint the store uses, ``GET /schemas/ids/{id}``, as the
registry documents it; the client, its basic auth and the store's caching and
error handling are the real code.
"""

from __future__ import annotations

import base64
import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Iterator

import pytest

from phenoflow.connectors.radar import mapping as m
from phenoflow.connectors.radar.schemas import SchemaStore
from phenoflow.connectors.radar.wire import WireError, decode, encode
from phenoflow.core.config import load_settings

LIGHT_AVSC = Path(__file__).resolve().parents[3] / "data" / "radar" / "schemas" / "commons" / "passive" / "phone" / "phone_light.avsc"


@pytest.fixture
def registry() -> Iterator[tuple[str, list[tuple[str, str | None]]]]:
    schema_str = LIGHT_AVSC.read_text()
    seen: list[tuple[str, str | None]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server API
            seen.append((self.path, self.headers.get("Authorization")))
            if self.path.split("?")[0] == "/schemas/ids/41":
                body, code = json.dumps({"schema": schema_str}).encode(), 200
            else:
                body, code = json.dumps({"error_code": 40403, "message": "Schema not found"}).encode(), 404
            self.send_response(code)
            self.send_header("Content-Type", "application/vnd.schemaregistry.v1+json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", seen
    server.shutdown()


def test_registry_ids_are_fetched_once_with_basic_auth_and_unknown_ids_dead_letter(registry) -> None:
    url, seen = registry
    settings = load_settings(schema_registry_url=url, schema_registry_auth="bot:pw")
    store = SchemaStore.from_registry(settings.registry_config())
    schema = store.get(41)
    assert schema is not None and schema["name"] == m.LIGHT
    msg = encode(41, schema, {"time": 1572017971.11, "timeReceived": 1572017971.2, "light": 159.0})
    assert decode(msg, store) == (m.LIGHT, {"time": 1572017971.11, "timeReceived": 1572017971.2, "light": 159.0})
    assert decode(msg, store)[0] == m.LIGHT
    assert [p for p, _ in seen].count("/schemas/ids/41") == 1  # cached after the first fetch
    assert seen[0][1] == "Basic " + base64.b64encode(b"bot:pw").decode()
    with pytest.raises(WireError, match="unknown schema id 7"):
        decode(b"\x00\x00\x00\x00\x07" + msg[5:], store)
