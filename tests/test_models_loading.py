"""Architectures and safe loading: safetensors, state dict, TorchScript, ONNX; pickle refused."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
import warnings
import zlib
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper
from safetensors.torch import load_file, save_file

from ecgaudit.errors import ConfigError, InputError, ModelLoadError
from ecgaudit.models import (
    ECGResNet,
    ResNet1D,
    build_model,
    detect_format,
    load_model,
    load_model_config,
    parse_model_config,
)

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "ptbxl_model"
WEIGHTS = EXAMPLE / "ecgresnet_ptbxl.safetensors"
CONFIG = EXAMPLE / "ecgresnet_ptbxl.json"
NAMES = ROOT / "tests" / "fixtures" / "models" / "ecgresnet_tensor_names.json"


class _Payload:
    """Unpickling this creates a marker file: proof that code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (Path.touch, (str(self.marker),))  # type: ignore[return-value]


@pytest.fixture(scope="module")
def config():  # type: ignore[no-untyped-def]
    return load_model_config(CONFIG)


def _x(n: int = 3, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, 12, 300)).astype(np.float32)


def test_ecgresnet_declares_exactly_the_published_tensors() -> None:
    published = json.loads(NAMES.read_text())["state_dict_keys"]
    ours = {k: list(v.shape) for k, v in ECGResNet().state_dict().items()}
    assert ours == published
    n_params = sum(p.numel() for p in ECGResNet().parameters())
    assert 200_000 < n_params < 300_000  # "~250k params" in the data README


def test_deeper_resnet_is_configurable() -> None:
    deep = ResNet1D(n_leads=8, n_classes=3, widths=(32, 64, 128), blocks_per_stage=3)
    out = deep(torch.zeros(2, 8, 500))
    assert out.shape == (2, 3)
    assert len(deep.blocks) == 9
    assert sum(p.numel() for p in ResNet1D().parameters()) > 5 * sum(
        p.numel() for p in ECGResNet().parameters())


def test_build_model_from_config(config) -> None:  # type: ignore[no-untyped-def]
    net = build_model(config)
    assert isinstance(net, ECGResNet) and not net.training
    cfg = parse_model_config({**config.to_dict(), "architecture": "resnet1d",
                              "architecture_params": {"widths": [16, 32]}})
    assert build_model(cfg).head.in_features == 32
    bad = parse_model_config({**config.to_dict(), "architecture": "transformer"})
    with pytest.raises(ModelLoadError, match=r"unknown architecture 'transformer'.*ecgresnet"):
        build_model(bad)
    bad = parse_model_config({**config.to_dict(), "architecture_params": {"depth": 3}})
    with pytest.raises(ModelLoadError, match=r"invalid parameters \{'depth': 3\}"):
        build_model(bad)


def test_shipped_safetensors_load_strictly(config) -> None:  # type: ignore[no-untyped-def]
    model = load_model(WEIGHTS, config)
    assert model.format == "safetensors" and model.device == "cpu"
    assert model.module is not None and not model.module.training
    sd = load_file(str(WEIGHTS))
    for k, v in model.module.state_dict().items():
        torch.testing.assert_close(v, sd[k], rtol=0, atol=0)
    assert model.describe()["sha256"] == __import__("hashlib").sha256(
        WEIGHTS.read_bytes()).hexdigest()


def test_plain_and_nested_state_dicts(tmp_path: Path, config) -> None:  # type: ignore[no-untyped-def]
    sd = load_file(str(WEIGHTS))
    ref = load_model(WEIGHTS, config)(_x())
    variants = {
        "plain.pt": sd,
        "ckpt.pth": {"state_dict": sd, "epoch": 24, "val_auc": 0.92},
        "dp.pt": {f"module.{k}": v for k, v in sd.items()},
    }
    for name, obj in variants.items():
        torch.save(obj, tmp_path / name)
        model = load_model(tmp_path / name, config)
        assert model.format == "state_dict"
        np.testing.assert_array_equal(model(_x()), ref)


def test_key_mismatch_lists_missing_and_unexpected(tmp_path: Path, config) -> None:  # type: ignore[no-untyped-def]
    sd = load_file(str(WEIGHTS))
    sd.pop("blocks.1.shortcut.0.weight")
    sd["blocks.2.conv1.weight"] = torch.zeros(3)
    save_file(sd, str(tmp_path / "m.safetensors"))
    with pytest.raises(ModelLoadError) as err:
        load_model(tmp_path / "m.safetensors", config)
    msg = str(err.value)
    assert "missing keys (1): blocks.1.shortcut.0.weight" in msg
    assert "unexpected keys (1): blocks.2.conv1.weight" in msg


def test_shape_mismatch_names_the_tensor(config) -> None:  # type: ignore[no-untyped-def]
    four = parse_model_config({**config.to_dict(), "classes": ["A", "B", "C", "D"]})
    with pytest.raises(ModelLoadError, match=r"head.weight: file \(5, 128\) vs model \(4, 128\)"):
        load_model(WEIGHTS, four)


def test_weights_without_architecture(config) -> None:  # type: ignore[no-untyped-def]
    cfg = parse_model_config({**config.to_dict(), "architecture": None})
    with pytest.raises(ModelLoadError, match="name the network in the model config"):
        load_model(WEIGHTS, cfg)


@pytest.mark.parametrize("name", ["model.pt", "model.pkl", "model.bin"])
def test_raw_pickle_is_refused_without_running_it(tmp_path: Path, name: str, config) -> None:  # type: ignore[no-untyped-def]
    marker = tmp_path / "pwned"
    (tmp_path / name).write_bytes(pickle.dumps({"w": _Payload(marker)}))
    # Sanity check that the payload is live: unpickling it here does create the marker.
    pickle.loads(pickle.dumps(_Payload(tmp_path / "live")))
    assert (tmp_path / "live").exists()
    with pytest.raises(ModelLoadError, match=r"pickle; refused\. ecgaudit never unpickles"):
        load_model(tmp_path / name, config)
    assert not marker.exists()


def test_joblib_style_compressed_pickle_is_refused(tmp_path: Path) -> None:
    p = tmp_path / "model.joblib.z"
    p.write_bytes(zlib.compress(pickle.dumps({"a": 1})))
    with pytest.raises(ModelLoadError, match=r"zlib-compressed .*refused"):
        detect_format(p)


def test_torch_save_with_python_objects_is_refused(tmp_path: Path, config) -> None:  # type: ignore[no-untyped-def]
    marker = tmp_path / "pwned"
    torch.save({"w": torch.zeros(2), "extra": _Payload(marker)}, tmp_path / "ckpt.pt")
    with pytest.raises(ModelLoadError, match="holds pickled Python objects"):
        load_model(tmp_path / "ckpt.pt", config)
    assert not marker.exists()
    torch.save(ECGResNet(), tmp_path / "full.pt")  # a whole nn.Module
    with pytest.raises(ModelLoadError, match=r"whole nn\.Module"):
        load_model(tmp_path / "full.pt", config)


def test_not_a_state_dict(tmp_path: Path, config) -> None:  # type: ignore[no-untyped-def]
    torch.save([torch.zeros(2)], tmp_path / "list.pt")
    with pytest.raises(ModelLoadError, match=r"does not hold a state dict.*found list"):
        load_model(tmp_path / "list.pt", config)


def test_truncated_and_unknown_files(tmp_path: Path, config) -> None:  # type: ignore[no-untyped-def]
    p = tmp_path / "cut.safetensors"
    p.write_bytes(WEIGHTS.read_bytes()[:200_000])
    with pytest.raises(ModelLoadError, match=r"cut.safetensors"):
        load_model(p, config)
    q = tmp_path / "weights.h5"
    q.write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(64))
    with pytest.raises(ModelLoadError, match="unrecognised format"):
        detect_format(q)
    with pytest.raises(ModelLoadError, match="does not exist"):
        detect_format(tmp_path / "none.pt")


def test_torchscript_matches_eager(tmp_path: Path, config) -> None:  # type: ignore[no-untyped-def]
    eager = load_model(WEIGHTS, config)
    assert eager.module is not None
    with warnings.catch_warnings():  # TorchScript is deprecated in torch 2.13, still loadable
        warnings.simplefilter("ignore", DeprecationWarning)
        traced = torch.jit.trace(eager.module, torch.from_numpy(_x(1)))
        traced.save(str(tmp_path / "ts.pt"))
    ts = load_model(tmp_path / "ts.pt", config)
    assert ts.format == "torchscript"
    np.testing.assert_allclose(ts(_x(5, seed=1)), eager(_x(5, seed=1)), rtol=1e-5, atol=1e-5)


def test_onnx_handmade_graph_against_numpy(tmp_path: Path) -> None:
    # mean over time, then a linear layer: logits = mean(x, -1) @ W.T + b.
    rng = np.random.default_rng(3)
    w = rng.normal(size=(2, 12)).astype(np.float32)
    b = rng.normal(size=2).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("GlobalAveragePool", ["x"], ["p"]),
         helper.make_node("Flatten", ["p"], ["f"]),
         helper.make_node("Gemm", ["f", "W", "b"], ["y"], transB=1)],
        "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["B", 12, 300])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["B", 2])],
        [numpy_helper.from_array(w, "W"), numpy_helper.from_array(b, "b")],
    )
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    onnx.save(m, str(tmp_path / "tiny.onnx"))
    cfg = parse_model_config({"fs": 100, "leads": [f"L{i}" for i in range(12)],
                              "classes": ["a", "b"], "window": {"length": 300}})
    model = load_model(tmp_path / "tiny.onnx", cfg, threads=1)
    assert model.format == "onnx" and model.module is None
    x = _x(4)
    np.testing.assert_allclose(model(x), x.mean(-1) @ w.T + b, rtol=1e-5, atol=1e-5)


def test_onnx_export_of_ecgresnet_matches_torch(tmp_path: Path, config) -> None:  # type: ignore[no-untyped-def]
    eager = load_model(WEIGHTS, config)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(eager.module, (torch.from_numpy(_x(1)),), str(tmp_path / "m.onnx"),
                          dynamo=False, input_names=["x"], dynamic_axes={"x": {0: "batch"}})
    ox = load_model(tmp_path / "m.onnx", config)
    np.testing.assert_allclose(ox(_x(6, 2)), eager(_x(6, 2)), rtol=1e-4, atol=1e-4)


def test_onnx_garbage_is_a_load_error(tmp_path: Path, config) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "bad.onnx").write_bytes(b"this is not protobuf")
    with pytest.raises(ModelLoadError, match=r"ONNX file 'bad.onnx' cannot be loaded"):
        load_model(tmp_path / "bad.onnx", config)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-CUDA message")
def test_cuda_requested_without_cuda(config) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InputError, match="CUDA is not available"):
        load_model(WEIGHTS, config, device="cuda")
    assert load_model(WEIGHTS, config, device="auto").device == "cpu"
    with pytest.raises(InputError, match="unknown device 'tpu'"):
        load_model(WEIGHTS, config, device="tpu")


def test_model_config_validation(tmp_path: Path, config) -> None:  # type: ignore[no-untyped-def]
    data = config.to_dict()
    with pytest.raises(ConfigError, match=r"sampling_rate: unknown key"):
        parse_model_config({**data, "sampling_rate": 100}, "m.json")
    with pytest.raises(ConfigError, match=r"leads must be unique; repeated: \['I'\]"):
        parse_model_config({**data, "leads": ["I", "I"]})
    with pytest.raises(ConfigError, match=r"window.length"):
        parse_model_config({**data, "window": {"length": 0}})
    (tmp_path / "m.json").write_text("{not json")
    with pytest.raises(ConfigError, match=r"'m.json' is not valid JSON"):
        load_model_config(tmp_path / "m.json")
    assert config.score_columns == [f"score:{c}" for c in ("NORM", "MI", "STTC", "CD", "HYP")]


def test_models_package_imports_without_torch_and_says_how_to_install() -> None:
    code = (
        "import sys, importlib.abc\n"
        "class Block(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path, target=None):\n"
        "        if name.split('.')[0] == 'torch':\n"
        "            raise ModuleNotFoundError(f'No module named {name!r}', name=name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "import ecgaudit.models as m\n"
        "from ecgaudit.errors import InputError\n"
        "m.parse_model_config({'fs': 100, 'leads': ['I'], 'classes': ['A']})\n"
        "try:\n    m.load_model\nexcept InputError as e:\n    print('OK', e)\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("OK") and "pip install 'ecgaudit[torch]'" in res.stdout
