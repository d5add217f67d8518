"""ONNX export: same outputs as PyTorch, metadata, reproducibility for a seed (needs the train extra)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

torch = pytest.importorskip("torch")

from phenoflow.core.contract import RhythmDaily
from phenoflow.models.autoencoder import DenseAutoencoder, GruSeq2Seq, deterministic
from phenoflow.models.export import export_onnx
from phenoflow.models.train import train_model
from phenoflow.operators.scoring.reconstruction import OnnxScorer

NAMES = [f"{m}.{s}.w{w}" for m in ("acc", "scr") for s in ("m10", "l5", "ra") for w in (2, 6, 14)]


def records(n_part: int = 3, n_days: int = 40, seed: int = 0) -> list[RhythmDaily]:
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(len(NAMES), 2))
    out = []
    for j in range(n_part):
        for d in range(n_days):
            x = A @ rng.normal(size=2) + 0.2 * rng.normal(size=len(NAMES))
            feats: dict[str, float | None] = {n: float(v) for n, v in zip(NAMES, x, strict=True)}
            feats["acc.l5.w2"] = None if d % 5 == 0 else feats["acc.l5.w2"]
            feats["const.x.w2"] = 1.0  # constant: dropped
            feats["acc.m10.w4"] = 1.0 + d  # window not in the default subset: dropped
            out.append(RhythmDaily(participant=f"p{j}", day=f"2024-01-{d + 1:02d}" if d < 31 else f"2024-02-{d - 30:02d}",
                                   features=feats, coverage={"w2": 1.0}))
    return out


@pytest.mark.parametrize("kind", ["autoencoder", "gru"])
def test_onnx_output_equals_pytorch(tmp_path: Path, kind: str) -> None:
    import onnxruntime as ort

    p = 7
    with deterministic(3):
        model = DenseAutoencoder(p, hidden=12) if kind == "autoencoder" else GruSeq2Seq(p, hidden=6)
    shape = (p,) if kind == "autoencoder" else (24, p)
    rng = np.random.default_rng(0)
    path = export_onnx(model, rng.normal(size=(2, *shape)), tmp_path / "m.onnx", {"k": "v"})
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    proto = onnx.load(path)
    assert proto.opset_import[0].version >= 17
    assert {e.key: e.value for e in proto.metadata_props} == {"k": "v"}
    for n in (1, 5, 300):  # dynamic batch axis
        X = rng.normal(size=(n, *shape)).astype(np.float32)
        got = sess.run(None, {"x": X})[0]
        with torch.no_grad():
            want = model(torch.from_numpy(X)).numpy()
        assert got.shape == want.shape
        assert np.max(np.abs(got - want)) < 1e-5


def initializers(path: Path) -> dict[str, np.ndarray]:
    return {t.name: numpy_helper.to_array(t) for t in onnx.load(path).graph.initializer}


def test_same_seed_same_weights_and_bytes(tmp_path: Path) -> None:
    recs = records()
    kw = dict(hidden=8, max_epochs=6, patience=3)
    a = train_model(recs, None, tmp_path / "a.onnx", seed=5, **kw)
    b = train_model(recs, None, tmp_path / "b.onnx", seed=5, **kw)
    c = train_model(recs, None, tmp_path / "c.onnx", seed=6, **kw)
    wa, wb, wc = initializers(a.out), initializers(b.out), initializers(c.out)
    assert wa.keys() == wb.keys() and all(np.array_equal(wa[k], wb[k]) for k in wa)
    assert a.out.read_bytes() == b.out.read_bytes()
    assert a.model_id.split("@")[1] == b.model_id.split("@")[1]
    assert any(not np.array_equal(wa[k], wc[k]) for k in wa)


def test_metadata_and_standardisation(tmp_path: Path) -> None:
    recs = records()
    s = train_model(recs, None, tmp_path / "m.onnx", hidden=8, seed=1, max_epochs=3, patience=2)
    sc = OnnxScorer(s.out)
    md = sc.metadata
    for key in ("feature_names", "mean", "sd", "input_kind", "model_kind", "phenoflow_version", "format",
                "training_data_sha256", "seed", "hidden", "error_groups", "log_features", "clip"):
        assert key in md
    assert (md["input_kind"], md["model_kind"], md["seed"], md["hidden"]) == ("rhythm", "autoencoder", "1", "8")
    assert s.data_sha256 == md["training_data_sha256"] and len(s.data_sha256) == 64
    names = json.loads(md["feature_names"])
    assert names == sorted(NAMES)  # const.x.w2 (constant) and acc.m10.w4 (window 4) dropped
    assert (s.dropped_constant, s.dropped_windows) == (1, 1)
    # mean/SD equal the training rows' (the last 20 % of each participant's days are held out)
    train = [r for r in recs if int(r.day[-2:]) + (31 if r.day[5:7] == "02" else 0) <= 32]
    assert s.n_train == len(train) == 96 and s.n_val == 24
    raw = np.array([[np.nan if r.features[n] is None else r.features[n] for n in names] for r in train])
    assert np.allclose(json.loads(md["mean"]), np.nanmean(raw, axis=0), rtol=1e-12)
    assert np.allclose(json.loads(md["sd"]), np.nanstd(raw, axis=0), rtol=1e-12)
    groups = json.loads(md["error_groups"])
    assert groups["names"] == ["acc", "scr"]  # one error group per modality
    assert groups["index"] == [0 if n.startswith("acc.") else 1 for n in names]
    assert s.n_error_groups == 2 and s.best_epoch >= 1
    # κ and the calibration settings it holds for reach the scorer through the ErrorSpace
    from phenoflow.operators.scoring.calibration import CalibrationConfig

    space = sc.error_space()
    assert space.threshold_factor == float(md["threshold_factor"]) == s.threshold_factor
    assert space.factor_setup == json.loads(md["threshold_setup"]) == CalibrationConfig().setup()
