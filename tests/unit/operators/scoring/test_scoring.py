"""OnnxScorer: metadata, vectorisation, batched reconstruction errors, days; no torch needed.

The models here are hand-built ONNX graphs (x ↦ x·W + b) so every expected
output is computed independently with numpy.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from phenoflow.core.contract import HourlyFeatures, RhythmDaily
from phenoflow.core.errors import UserError
from phenoflow.core.timebase import local_day_iso
from phenoflow.operators.scoring.reconstruction import FeatureSpec, OnnxScorer

NAMES = ("a.m10.w2", "a.m10.w6", "b.is.w2", "c.pow.24.w2")


def linear_model(path: Path, W: np.ndarray, b: np.ndarray, meta: dict[str, str], rank: int = 2) -> Path:
    """Write an ONNX model y = x·W + b with the given metadata."""
    p = W.shape[0]
    shape = ["batch", p] if rank == 2 else ["batch", 24, p]
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["xw"]), helper.make_node("Add", ["xw", "b"], ["y"])],
        "linear",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, shape)],
        [numpy_helper.from_array(W.astype(np.float32), "W"), numpy_helper.from_array(b.astype(np.float32), "b")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    for k, v in meta.items():
        e = model.metadata_props.add()
        e.key, e.value = k, v
    onnx.save(model, path)
    return path


def spec(names: tuple[str, ...] = NAMES, groups: list[int] | None = None) -> FeatureSpec:
    p = len(names)
    g = np.array(groups if groups is not None else list(range(p)))
    return FeatureSpec(
        names=names,
        mean=np.linspace(-1.0, 1.0, p),
        sd=np.linspace(0.5, 2.0, p),
        log=np.array([i == p - 1 for i in range(p)]),
        clip=3.0,
        groups=g,
        group_names=tuple(f"g{i}" for i in range(int(g.max()) + 1)),
    )


def meta(s: FeatureSpec, input_kind: str = "rhythm", model_kind: str = "autoencoder") -> dict[str, str]:
    return {**s.to_metadata(), "input_kind": input_kind, "model_kind": model_kind}


@pytest.fixture
def weights() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.normal(size=(len(NAMES), len(NAMES))) * 0.5, rng.normal(size=len(NAMES))


def rhythm(pid: str, day: str, feats: dict[str, float | None]) -> RhythmDaily:
    return RhythmDaily(participant=pid, day=day, features=feats, coverage={"w2": 1.0})


def test_vectorize_orders_standardises_logs_imputes_and_clips(tmp_path: Path, weights) -> None:
    s = spec()
    sc = OnnxScorer(linear_model(tmp_path / "m.onnx", *weights, meta(s)))
    assert sc.feature_names == NAMES and sc.input_kind == "rhythm"
    recs = [
        rhythm("p", "2024-01-01", {"c.pow.24.w2": 3.0, "b.is.w2": 0.5, "a.m10.w6": 1.0, "a.m10.w2": 2.0, "extra": 9.0}),
        rhythm("p", "2024-01-02", {"a.m10.w2": None, "a.m10.w6": float("nan"), "b.is.w2": 100.0}),  # c missing
        {"features": {"a.m10.w2": float("inf"), "a.m10.w6": -50.0, "b.is.w2": 0.0, "c.pow.24.w2": -1.0}},
    ]
    X = sc.vectorize(recs)
    m, sd = s.mean, s.sd
    want = np.array(
        [
            # (2 − m)/sd = 6 is clipped at +3
            [3.0, (1.0 - m[1]) / sd[1], (0.5 - m[2]) / sd[2], (np.log1p(3.0) - m[3]) / sd[3]],
            [0.0, 0.0, 3.0, 0.0],  # missing → 0; (100 − m)/sd clipped at +3
            [0.0, -3.0, (0.0 - m[2]) / sd[2], (np.log1p(0.0) - m[3]) / sd[3]],  # log1p(max(x, 0))
        ]
    )
    assert X.dtype == np.float32 and X.shape == (3, 4)
    assert np.allclose(X, want, atol=1e-6)


def test_reconstruction_errors_batched_equal_numpy(tmp_path: Path, weights) -> None:
    W, b = weights
    sc = OnnxScorer(linear_model(tmp_path / "m.onnx", W, b, meta(spec())), batch_size=7)
    X = np.random.default_rng(1).normal(size=(20, 4)).astype(np.float32)
    want = np.abs(X - (X @ W.astype(np.float32) + b.astype(np.float32)))
    calls = []
    real = sc._session

    class Counting:  # counts ORT runs; forwards everything else
        def run(self, *a, **k):
            calls.append(a[1]["x"].shape[0])
            return real.run(*a, **k)

    sc._session = Counting()  # type: ignore[assignment]
    got = sc.reconstruction_errors(X)
    assert calls == [7, 7, 6]  # one ORT run per batch
    assert np.allclose(got, want, atol=1e-5)
    single = np.vstack([sc.reconstruction_errors(X[i : i + 1]) for i in range(20)])
    assert np.allclose(single, got, atol=1e-6)
    assert sc.reconstruction_errors(X[:0]).shape == (0, 4)


def test_day_errors_rhythm(tmp_path: Path, weights) -> None:
    W, b = weights
    sc = OnnxScorer(linear_model(tmp_path / "m.onnx", W, b, meta(spec())))
    recs = [
        rhythm("p1", "2024-01-01", dict(zip(NAMES, [1.0, 2.0, 3.0, 4.0], strict=True))),
        rhythm("p2", "2024-01-01", {"a.m10.w2": 1.0}),
    ]
    out = sc.day_errors(recs)
    X = sc.vectorize(recs)
    assert [(d.participant, d.day) for d in out] == [("p1", "2024-01-01"), ("p2", "2024-01-01")]
    assert np.allclose(out[0].errors, np.abs(X[0] - (X[0] @ W + b)), atol=1e-5)
    assert out[0].observed == 1.0 and out[1].observed == 0.25
    space = sc.error_space()
    assert all(np.allclose(d.grouped, space.reduce(d.errors)) for d in out)


def hour(pid: str, local_day_start: float, h: int, off: int, value: float, filled: float = 0.0) -> HourlyFeatures:
    return HourlyFeatures(
        participant=pid, utc_offset_min=off, hour_start=local_day_start + h * 3600 - off * 60,
        local_hour=h, weekday=0, features={n: value + h for n in NAMES}, filled=filled,
    )


def test_day_errors_hourly_groups_by_local_day(tmp_path: Path, weights) -> None:
    W, b = weights
    sc = OnnxScorer(linear_model(tmp_path / "h.onnx", W, b, meta(spec(), "hourly")))
    day0 = 1_704_067_200.0  # 2024-01-01 00:00 UTC; local midnight at UTC+10 is 14:00 UTC the day before
    recs = [hour("p1", day0, h, 600, 0.1) for h in range(24)] + [hour("p1", day0 + 86_400, h, 600, 0.2) for h in range(3)]
    assert local_day_iso(recs[0].hour_start, 600) == "2024-01-01"
    out = sc.day_errors(recs)
    assert [(d.day, d.errors.shape) for d in out] == [("2024-01-01", (24, 4)), ("2024-01-02", (3, 4))]
    X = sc.vectorize(recs[:24])
    assert np.allclose(out[0].errors, np.abs(X - (X @ W + b)), atol=1e-5)
    assert out[1].observed == pytest.approx(3 / 24)
    assert out[1].grouped.shape == (3, 4)


def test_day_errors_gru_builds_24_hour_sequences(tmp_path: Path, weights) -> None:
    W, b = weights
    sc = OnnxScorer(linear_model(tmp_path / "g.onnx", W, b, meta(spec(), "hourly", "gru"), rank=3))
    day0 = 1_704_067_200.0
    recs = [hour("p1", day0, h, 0, 0.1, filled=1.0 if h < 4 else 0.0) for h in range(24) if h != 5]
    (d,) = sc.day_errors(recs)
    assert d.errors.shape == (23, 4)  # the absent hour 5 has no error row
    X = sc.vectorize(recs)
    assert np.allclose(d.errors, np.abs(X - (X @ W + b)), atol=1e-5)
    assert d.observed == pytest.approx(19 / 24)  # 23 present, 4 fully imputed
    assert np.allclose(d.grouped, sc.error_space().reduce(d.errors))


def test_model_id_tracks_file_content(tmp_path: Path, weights) -> None:
    W, b = weights
    a = OnnxScorer(linear_model(tmp_path / "net.onnx", W, b, meta(spec())))
    a2 = OnnxScorer(tmp_path / "net.onnx")
    c = OnnxScorer(linear_model(tmp_path / "net.onnx", W + 1, b, meta(spec())))
    assert a.model_id == a2.model_id and a.model_id.startswith("net@") and len(a.model_id) == 16
    assert c.model_id != a.model_id
    space = a.error_space()
    assert space.feature_names == NAMES and space.model_id == a.model_id


def test_bad_model_files_raise_user_errors(tmp_path: Path, weights) -> None:
    with pytest.raises(UserError, match=r"missing\.onnx not found — train one with `phenoflow train"):
        OnnxScorer(tmp_path / "missing.onnx")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"this is not a protobuf")
    with pytest.raises(UserError, match="not a valid ONNX model"):
        OnnxScorer(bad)
    bare = linear_model(tmp_path / "bare.onnx", *weights, {"input_kind": "rhythm"})
    with pytest.raises(UserError, match="lacks phenoflow metadata"):
        OnnxScorer(bare)
    broken = linear_model(tmp_path / "broken.onnx", *weights, {**meta(spec()), "mean": "[1, 2"})
    with pytest.raises(UserError, match="malformed phenoflow metadata"):
        OnnxScorer(broken)
    odd = linear_model(tmp_path / "odd.onnx", *weights, meta(spec(), "minutely"))
    with pytest.raises(UserError, match="input_kind='minutely'"):
        OnnxScorer(odd)


def test_metadata_round_trip() -> None:
    s = spec(groups=[0, 0, 1, 1])
    back = FeatureSpec.from_metadata(s.to_metadata())
    assert back.names == s.names and back.group_names == ("g0", "g1")
    for f in ("mean", "sd", "log", "groups"):
        assert np.array_equal(getattr(back, f), getattr(s, f))
    assert json.loads(s.to_metadata()["feature_names"]) == list(NAMES)


def test_scoring_runs_without_torch(tmp_path: Path, weights) -> None:
    path = linear_model(tmp_path / "m.onnx", *weights, meta(spec()))
    code = (
        "import sys, numpy as np;"
        "from phenoflow.operators.scoring.reconstruction import OnnxScorer;"
        "from phenoflow.operators.scoring.calibration import ParticipantScorer, CalibrationConfig;"
        "from phenoflow.operators.stepup.who5 import SurveyStepUp;"
        f"s = OnnxScorer({str(path)!r});"
        "E = s.reconstruction_errors(np.ones((4, 4), np.float32));"
        "ps = ParticipantScorer('p', s.error_space(), CalibrationConfig(calibration_days=3));"
        "[ps.update(f'2024-01-0{i + 1}', E[i] * (1 + i)) for i in range(4)];"
        "print(E.shape, 'torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "(4, 4) False"
