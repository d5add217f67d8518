"""Settings in one place: defaults < config file < environment < command-line flags.

A config file is TOML (``--config FILE`` or ``PHENOFLOW_CONFIG``) with the same
keys as :class:`Settings`, e.g.::

    bootstrap = "kafka-0.kafka:9092"
    topic_prefix = "study42."
    partitions = 8
    allowed_lateness_s = 7200

Every key can also be set as an environment variable ``PHENOFLOW_<KEY>`` in
upper case (``PHENOFLOW_BOOTSTRAP``, ``PHENOFLOW_TOPIC_PREFIX``, ...).
Comma-separated settings (``count_columns``, ``radar_topics``, ``kafka_options``)
also accept a TOML array of strings in the file: ``count_columns = ["call_n", "sms_n"]``.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from phenoflow.core.errors import UserError

__all__ = ["Settings", "load_settings", "settings_env"]


@dataclass(frozen=True)
class Settings:
    """Runtime settings shared by the CLI, the flows and the tools."""

    #: Kafka bootstrap servers, ``host:port[,host:port]``.
    bootstrap: str = "localhost:9092"
    #: Prefix added to every contract topic name (``phenoflow.raw.screen``).
    topic_prefix: str = "phenoflow."
    #: Partitions for topics phenoflow creates (keyed by participant).
    partitions: int = 4
    #: Largest accepted message value, bytes; larger goes to the dead-letter topic.
    max_message_bytes: int = 1 << 20
    #: Event-time slack per participant stream before an hour is closed, seconds.
    allowed_lateness_s: float = 2 * 3600.0
    #: A sensor stream silent this long (event time) no longer holds back closing, seconds.
    idle_timeout_s: float = 48 * 3600.0
    #: Places: DBSCAN neighbourhood radius (m) and minimum samples (Adler et al. 2020 seed values).
    place_eps_m: float = 1000.0
    place_min_samples: int = 10
    #: Rhythm: minimum share of valid hours for a window's statistic to be reported.
    rhythm_min_coverage: float = 0.5
    #: ``phenoflow rhythm`` (offline CSV): comma-separated columns without IS/IV; empty = every column gets them.
    count_columns: str = ""
    #: Scoring: path of the ONNX model; empty = the shipped default.
    model_path: str = ""
    #: Scoring: days per participant used to learn its error distribution and threshold.
    calibration_days: int = 14
    #: Scoring: optional JSON file {participant: threshold} fitted by `phenoflow evaluate`.
    thresholds_path: str = ""
    #: Port of the Prometheus /metrics endpoint; 0 disables it.
    metrics_port: int = 0
    #: Extra librdkafka settings as "key=value,key=value".
    kafka_options: str = ""
    #: Secret of the keyed participant pseudonyms (phenoflow/core/pseudonym.py); empty = key file.
    pseudonym_secret: str = field(default="", repr=False)
    #: File holding a generated pseudonym secret when ``pseudonym_secret`` is empty.
    pseudonym_key_file: str = ".phenoflow/pseudonym.key"
    #: Input of the hourly stage: "contract" (phenoflow's JSON topics) or "radar" (a RADAR-base cluster).
    source: str = "contract"
    #: RADAR-base: Schema Registry URL; empty = schemas from ``radar_schemas_dir``.
    schema_registry_url: str = ""
    #: RADAR-base: directory of .avsc files (RADAR-Schemas' commons/), optional ids.json (docs/real-data.md).
    radar_schemas_dir: str = ""
    #: RADAR-base topics read by ``--source radar`` (full names, comma-separated; no prefix is added).
    #: PHQ-8 (questionnaire_phq8) is left out: it is not WHO-5, every record would be a dead letter.
    radar_topics: str = ("application_time_zone,android_phone_acceleration,android_phone_user_interaction,"
                         "android_phone_light,android_phone_relative_location,android_phone_call,"
                         "android_phone_sms")
    #: RADAR-base: IANA zone of participants until their first application_time_zone record; empty = UTC.
    radar_timezone: str = ""
    #: Kafka security (every client: flows, tools, Schema Registry); see docs/deploy.md.
    kafka_security_protocol: str = ""
    kafka_sasl_mechanism: str = ""
    kafka_sasl_username: str = ""
    kafka_sasl_password: str = field(default="", repr=False)
    kafka_ssl_ca_location: str = ""
    kafka_ssl_certificate_location: str = ""
    kafka_ssl_key_location: str = ""
    kafka_ssl_key_password: str = field(default="", repr=False)
    #: Schema Registry basic auth ``user:password``; empty = none.
    schema_registry_auth: str = field(default="", repr=False)
    #: Dashboard: bearer token clients must present (``PHENOFLOW_DASHBOARD_TOKEN``); empty = refuse to start.
    dashboard_token: str = field(default="", repr=False)
    #: Dashboard: local days kept in memory per participant.
    dashboard_days: int = 90
    extra: dict[str, Any] = field(default_factory=dict)

    def topic(self, short: str) -> str:
        """Full topic name for a contract short name (``raw.screen`` → ``phenoflow.raw.screen``)."""
        return f"{self.topic_prefix}{short}"

    def short(self, full: str) -> str:
        """Contract short name of a full topic name."""
        return full[len(self.topic_prefix) :] if full.startswith(self.topic_prefix) else full

    def kafka_config(self) -> dict[str, str]:
        """librdkafka settings: bootstrap plus ``kafka_options``."""
        conf = {"bootstrap.servers": self.bootstrap}
        for item in filter(None, (s.strip() for s in self.kafka_options.split(","))):
            key, sep, value = item.partition("=")
            if not sep:
                raise UserError(
                    f"kafka option {item!r} is not key=value — write e.g. "
                    "PHENOFLOW_KAFKA_OPTIONS='security.protocol=SSL'"
                )
            conf[key.strip()] = value.strip()
        conf.update(self.security_config())
        return conf

    def security_config(self) -> dict[str, str]:
        """librdkafka ``security.protocol``, ``sasl.*``, ``ssl.*`` from the ``kafka_*`` settings (set ones only)."""
        pairs = {
            "security.protocol": self.kafka_security_protocol,
            "sasl.mechanism": self.kafka_sasl_mechanism,
            "sasl.username": self.kafka_sasl_username,
            "sasl.password": self.kafka_sasl_password,
            "ssl.ca.location": self.kafka_ssl_ca_location,
            "ssl.certificate.location": self.kafka_ssl_certificate_location,
            "ssl.key.location": self.kafka_ssl_key_location,
            "ssl.key.password": self.kafka_ssl_key_password,
        }
        return {k: v for k, v in pairs.items() if v}

    def registry_config(self) -> dict[str, str]:
        """``SchemaRegistryClient`` settings: URL, basic auth, and the same TLS files as Kafka."""
        conf = {"url": self.schema_registry_url}
        if self.schema_registry_auth:
            conf["basic.auth.user.info"] = self.schema_registry_auth
        if self.kafka_ssl_ca_location:
            conf["ssl.ca.location"] = self.kafka_ssl_ca_location
        if self.kafka_ssl_certificate_location and self.kafka_ssl_key_location:
            conf["ssl.certificate.location"] = self.kafka_ssl_certificate_location
            conf["ssl.key.location"] = self.kafka_ssl_key_location
        return conf


_FIELDS = {f.name: f for f in dataclasses.fields(Settings) if f.name != "extra"}


def _coerce(name: str, value: Any, source: str) -> Any:
    kind: type[Any] = type(_FIELDS[name].default)
    try:
        if kind is bool:
            return str(value).lower() in {"1", "true", "yes", "on"}
        if kind is str and isinstance(value, list):
            # A TOML array for a comma-separated setting (count_columns = ["a", "b"]);
            # str() of the list would silently become one nonsense name.
            if not all(isinstance(v, str) and "," not in v for v in value):
                raise TypeError
            return ",".join(value)
        return kind(value)
    except (TypeError, ValueError):
        raise UserError(
            f"{source}: {name}={value!r} is not a valid {kind.__name__} — fix the value"
        ) from None


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Build :class:`Settings` from defaults, a TOML file, ``PHENOFLOW_*`` env vars and overrides.

    ``overrides`` whose value is None are ignored, so CLI options can be passed
    straight through.
    """
    values: dict[str, Any] = {}
    path = config_file or (Path(os.environ["PHENOFLOW_CONFIG"]) if os.environ.get("PHENOFLOW_CONFIG") else None)
    if path is not None:
        try:
            data = tomllib.loads(path.read_text())
        except FileNotFoundError:
            raise UserError(f"config file {path} not found — check the path or drop --config") from None
        except tomllib.TOMLDecodeError as exc:
            raise UserError(f"config file {path} is not valid TOML ({exc}) — fix the file") from None
        for key, value in data.items():
            if key not in _FIELDS:
                raise UserError(
                    f"config file {path}: unknown key {key!r} — valid keys: {', '.join(_FIELDS)}"
                )
            values[key] = _coerce(key, value, str(path))
    for key in _FIELDS:
        env = os.environ.get(f"PHENOFLOW_{key.upper()}")
        if env is not None and env != "":
            values[key] = _coerce(key, env, f"PHENOFLOW_{key.upper()}")
    for key, value in overrides.items():
        if value is not None:
            if key not in _FIELDS:
                raise TypeError(f"unknown setting {key}")
            values[key] = value
    if path is not None and not Path(values.get("pseudonym_key_file", Settings.pseudonym_key_file)).is_absolute():
        # A generated pseudonym key belongs beside the study's config, wherever the command runs.
        key_file = path.parent / values.get("pseudonym_key_file", Settings.pseudonym_key_file)
        values["pseudonym_key_file"] = str(key_file.absolute())  # absolute: a second load must not re-resolve it
    settings = Settings(**values)
    if settings.partitions < 1:
        raise UserError("partitions must be ≥ 1 — fix PHENOFLOW_PARTITIONS or the config file")
    if settings.source not in ("contract", "radar"):
        raise UserError(f"source {settings.source!r} is unknown — use contract or radar")
    return settings


def settings_env(settings: Settings) -> dict[str, str]:
    """``PHENOFLOW_*`` variables that rebuild ``settings`` in another process."""
    # The dashboard token stays out of other processes' environments.
    return {f"PHENOFLOW_{key.upper()}": str(getattr(settings, key)) for key in _FIELDS if key != "dashboard_token"}
