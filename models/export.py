"""Export a trained PyTorch model to ONNX with phenoflow's metadata (training-only; imports torch).

Uses the TorchScript-based exporter (``torch.onnx.export(..., dynamo=False)``):
the dynamo exporter of torch 2.13 needs the extra ``onnxscript`` package and the
two architectures here (Linear/ReLU, GRU) are exported exactly by the
TorchScript path. Opset 17, dynamic batch axis. The file is written
deterministically (same weights → same bytes), so same seed → same model id.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import onnx
import torch
from torch import nn

from phenoflow.core.errors import UserError

__all__ = ["OPSET", "INPUT_NAME", "OUTPUT_NAME", "export_onnx"]

OPSET = 17
INPUT_NAME = "x"
OUTPUT_NAME = "reconstruction"


def export_onnx(
    model: nn.Module,
    example: np.ndarray,
    out: str | Path,
    metadata: Mapping[str, str],
    *,
    check: np.ndarray | None = None,
    atol: float = 1e-4,
) -> Path:
    """Write ``model`` to ``out`` as ONNX with ``metadata`` as ``metadata_props``.

    ``example`` is one input batch ((n, p) or (n, 24, p)) used for tracing. When
    ``check`` is given, ONNX Runtime's output on it must match PyTorch's within
    ``atol``, else the export is refused.
    """
    out = Path(out)
    model.eval()
    x = torch.from_numpy(np.ascontiguousarray(example, dtype=np.float32))
    buf = io.BytesIO()
    with warnings.catch_warnings():
        # The TorchScript exporter's deprecation notice and GRU tracing notes are expected.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            (x,),
            buf,  # type: ignore[arg-type]  # torch annotates f as a path, but its TorchScript exporter takes file objects
            dynamo=False,
            opset_version=OPSET,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
            do_constant_folding=True,
        )
    proto = onnx.load_from_string(buf.getvalue())
    proto.doc_string = "phenoflow anomaly model (Adler et al. 2020); see models/README.md"
    del proto.metadata_props[:]
    for key in sorted(metadata):
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, str(metadata[key])
    onnx.checker.check_model(proto)
    data = proto.SerializeToString(deterministic=True)
    if check is not None:
        _verify(model, data, check, atol)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(out.name + ".tmp")
        tmp.write_bytes(data)
        tmp.replace(out)
    except OSError as exc:
        raise UserError(
            f"cannot write model to {out} ({exc.strerror}) — pick a writable --out path"
        ) from None
    return out


def _verify(model: nn.Module, data: bytes, X: np.ndarray, atol: float) -> None:
    """Refuse an export whose ONNX Runtime output differs from PyTorch's."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(data, sess_options=opts, providers=["CPUExecutionProvider"])
    X = np.ascontiguousarray(X, dtype=np.float32)
    got = sess.run(None, {INPUT_NAME: X})[0]
    with torch.no_grad():
        want = model(torch.from_numpy(X)).numpy()
    err = float(np.max(np.abs(got - want))) if got.size else 0.0
    if not err <= atol:
        raise RuntimeError(f"ONNX export differs from PyTorch by {err:.3g} (> {atol})")
