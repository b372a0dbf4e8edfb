"""Export and load_subnet: verified, atomic, safe to load.

    .venv/bin/python -m pytest tests/test_export.py -q            # ~15 s (trains a tiny supernet once)
    .venv/bin/python -m pytest tests/test_export.py -q -m "not slow"

The key check: the exported model's logits equal the supernet's for that arch, and
`load_subnet` takes raw pixels (it applies the saved normalisation itself).
"""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file, save_file

from supernet import load_subnet
from supernet.data.datasets import load_data
from supernet.errors import UsageError
from supernet.io.checkpoint import data_config, load_supernet
from supernet.io.export import ARCH_FILE, ONNX_FILE, WEIGHTS_FILE, export_subnet

from conftest import read_json, run_cli

ARCH = (64, 32)


@pytest.fixture(scope="module")
def supernet(digits_ckpt):
    return load_supernet(digits_ckpt)


@pytest.fixture(scope="module")
def bundle(supernet):
    return load_data(data_config(supernet))


@pytest.fixture(scope="module")
def exported(supernet, bundle, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("exports") / "a"
    export_subnet(
        supernet, ARCH, out, search_figures={"val_acc": 0.5}, budget={"max_params": 10**6}, verify_x=bundle.val_x[:256]
    )
    return out


def raw_digits() -> torch.Tensor:
    """Raw pixels in [0, 1], exactly what the digits loader builds before normalising."""
    from sklearn.datasets import load_digits

    return torch.tensor(load_digits().data[:200], dtype=torch.float32) / 16.0


class Boom:
    """A pickle payload that would create `marker` when unpickled."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


# ---------------------------------------------------------------------------- export
def test_export_writes_verified_compact_model(exported, supernet, bundle):
    assert {p.name for p in exported.iterdir()} >= {ARCH_FILE, WEIGHTS_FILE}
    meta = yaml.safe_load((exported / ARCH_FILE).read_text())
    assert meta["arch"] == list(ARCH) and meta["activation"] == "relu"
    assert meta["input_shape"] == [1, 8, 8] and meta["in_features"] == 64 and meta["num_classes"] == 10
    assert meta["params"] == supernet.space.params(ARCH) and meta["flops"] == supernet.space.flops(ARCH)
    assert meta["supernet"]["sha256"] == supernet.sha256
    assert meta["search"] == {"val_acc": 0.5} and meta["budget"] == {"max_params": 10**6}
    assert meta["verification"]["max_abs_diff"] < 1e-5 and meta["data"]["name"] == "digits"
    tensors = load_file(str(exported / WEIGHTS_FILE))
    assert {k: tuple(v.shape) for k, v in tensors.items()} == {
        "layers.0.weight": (64, 64), "layers.0.bias": (64,), "layers.1.weight": (32, 64), "layers.1.bias": (32,),
        "layers.2.weight": (10, 32), "layers.2.bias": (10,),
    }  # fmt: skip
    model = load_subnet(exported)
    assert isinstance(model, torch.nn.Module) and model.arch == ARCH
    assert sum(p.numel() for p in model.parameters()) == supernet.space.params(ARCH)
    with torch.no_grad():
        diff = (model.mlp(bundle.val_x) - supernet.model(bundle.val_x, ARCH)).abs().max().item()
    assert diff < 1e-5


def test_load_subnet_takes_raw_inputs(exported, supernet):
    model = load_subnet(exported)
    raw = raw_digits()
    with torch.no_grad():
        want = supernet.model(supernet.normalize(raw), ARCH)
        assert (model(raw) - want).abs().max().item() < 1e-5
        assert (model(raw.reshape(-1, 1, 8, 8)) - want).abs().max().item() < 1e-5  # any (N, ...) shape


def test_onnx_matches_pytorch(exported):
    ort = pytest.importorskip("onnxruntime")
    meta = yaml.safe_load((exported / ARCH_FILE).read_text())
    assert meta["onnx"]["checked"] == "onnxruntime" and meta["onnx"]["max_abs_diff"] < 1e-4
    session = ort.InferenceSession(str(exported / ONNX_FILE), providers=["CPUExecutionProvider"])
    raw = raw_digits()
    got = torch.from_numpy(session.run(None, {"input": raw.numpy()})[0])
    with torch.no_grad():
        assert (got - load_subnet(exported)(raw)).abs().max().item() < 1e-4


def test_arch_outside_space_or_budget_is_refused(supernet, bundle, tmp_path):
    with pytest.raises(UsageError, match="not on the grid"):
        export_subnet(supernet, (64, 33), tmp_path / "x", verify_x=bundle.val_x[:8], onnx=False)
    with pytest.raises(UsageError, match="max_params=1000"):
        export_subnet(supernet, ARCH, tmp_path / "x", budget={"max_params": 1000}, verify_x=bundle.val_x[:8])
    assert not (tmp_path / "x").exists()


def test_no_silent_overwrite(supernet, bundle, tmp_path):
    kw = {"verify_x": bundle.val_x[:16], "onnx": False}
    other = tmp_path / "notes"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    with pytest.raises(UsageError, match="exists and is not empty; pass overwrite=true"):
        export_subnet(supernet, ARCH, other, **kw)
    with pytest.raises(UsageError, match="not an export"):  # overwrite only replaces an export
        export_subnet(supernet, ARCH, other, overwrite=True, **kw)
    assert (other / "keep.txt").read_text() == "mine"
    out = tmp_path / "sub"
    export_subnet(supernet, ARCH, out, **kw)
    with pytest.raises(UsageError, match="pass overwrite=true"):
        export_subnet(supernet, (16,), out, **kw)
    export_subnet(supernet, (16,), out, overwrite=True, **kw)
    assert load_subnet(out).arch == (16,)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes", "sub"]  # no temp dirs left


def test_crash_mid_export_leaves_nothing_half_written(supernet, bundle, tmp_path, monkeypatch):
    import supernet.io.export as export_mod

    out = tmp_path / "sub"
    export_subnet(supernet, ARCH, out, verify_x=bundle.val_x[:16], onnx=False)
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def crash(*args, **kwargs):
        raise KeyboardInterrupt("killed while writing")

    monkeypatch.setattr(export_mod, "export_onnx", crash)
    for target, overwrite in ((tmp_path / "new", False), (out, True)):
        with pytest.raises(KeyboardInterrupt):
            export_subnet(supernet, (16,), target, overwrite=overwrite, verify_x=bundle.val_x[:16])
    assert not (tmp_path / "new").exists()
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # the old export is intact
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sub"]


# ---------------------------------------------------------------------------- tampered exports
def copy_export(src: Path, dst: Path) -> Path:
    dst.mkdir()
    for p in src.iterdir():
        (dst / p.name).write_bytes(p.read_bytes())
    return dst


def tampered(exported, tmp_path, edit) -> Path:
    """A copy of the export whose weights file went through `edit(tensors)`."""
    bad = copy_export(exported, tmp_path / "bad")
    tensors = load_file(str(bad / WEIGHTS_FILE))
    edit(tensors)
    save_file(tensors, str(bad / WEIGHTS_FILE))
    return bad


def test_wrong_shapes_are_named(exported, tmp_path):
    bad = tampered(exported, tmp_path, lambda t: t.update({"layers.1.weight": torch.zeros(48, 64)}))
    with pytest.raises(UsageError, match=r"layers\.1\.weight has shape \[48, 64\].*needs \[32, 64\]"):
        load_subnet(bad)


def test_extra_and_missing_keys_are_named(exported, tmp_path):
    def edit(tensors):
        tensors["backdoor"] = torch.zeros(3)
        del tensors["layers.2.bias"]

    bad = tampered(exported, tmp_path, edit)
    with pytest.raises(UsageError, match=r"missing \['layers\.2\.bias'\]; unexpected \['backdoor'\]"):
        load_subnet(bad)


def test_changed_weights_fail_the_hash(exported, tmp_path):
    bad = tampered(exported, tmp_path, lambda t: t["layers.0.bias"].add_(1))
    with pytest.raises(UsageError, match="sha256"):
        load_subnet(bad)


@pytest.mark.parametrize("missing", [ARCH_FILE, WEIGHTS_FILE])
def test_missing_file_is_named(exported, tmp_path, missing):
    bad = copy_export(exported, tmp_path / "bad")
    (bad / missing).unlink()
    with pytest.raises(UsageError, match=f"missing {missing}"):
        load_subnet(bad)


def test_pickles_are_never_loaded(exported, tmp_path):
    marker = tmp_path / "pwned"
    payload = pickle.dumps(Boom(marker))
    pt = tmp_path / "model.pt"
    pt.write_bytes(payload)
    with pytest.raises(UsageError, match="never unpickles"):
        load_subnet(pt)
    torch.save({"w": torch.zeros(2)}, tmp_path / "state.bin.ckpt")
    with pytest.raises(UsageError, match="never unpickles"):
        load_subnet(tmp_path / "state.bin.ckpt")
    bad = copy_export(exported, tmp_path / "bad")
    (bad / WEIGHTS_FILE).write_bytes(payload)  # a pickle disguised as safetensors
    with pytest.raises(UsageError, match="not a valid safetensors file"):
        load_subnet(bad)
    yaml_bomb = copy_export(exported, tmp_path / "bad_yaml")
    (yaml_bomb / ARCH_FILE).write_text(f"!!python/object/apply:os.system ['touch {marker}']\n")
    with pytest.raises(UsageError, match="not valid YAML"):
        load_subnet(yaml_bomb)
    assert not marker.exists()
    with pytest.raises(UsageError, match="does not exist"):
        load_subnet(tmp_path / "nowhere")


# ---------------------------------------------------------------------------- the command
@pytest.mark.slow
def test_cli_export_from_ckpt_and_from_search(digits_ckpt, supernet, tmp_path):
    run = tmp_path / "run"
    proc = run_cli(
        "supernet-export",
        f"ckpt_path={digits_ckpt}",
        "arch=[32,16]",
        f"out={tmp_path / 'a'}",
        "onnx=false",
        f"hydra.run.dir={run}",
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = read_json(run / "result.json")
    assert result["paths"]["export"] == str(tmp_path / "a") and result["export"]["max_abs_diff"] < 1e-5
    assert load_subnet(tmp_path / "a").arch == (32, 16)

    # A search run dir as the lead's search writes it: best/arch.yaml + result.json.
    search = tmp_path / "search"
    (search / "best").mkdir(parents=True)
    best = {
        "arch": [48],
        "params": supernet.space.params((48,)),
        "val_acc": 0.93,
        "strategy": "evolution",
        "constraints": {"max_params": 5000, "max_flops": None, "max_latency_ms": None},
    }
    (search / "best" / "arch.yaml").write_text(yaml.safe_dump(best))
    summary = {"ckpt_path": str(digits_ckpt), "ckpt_sha256": supernet.sha256, "constraints": {"max_params": 5000}}
    (search / "result.json").write_text(json.dumps(summary))
    proc = run_cli(
        "supernet-export", f"search_dir={search}", f"out={tmp_path / 'best'}", "onnx=false", f"hydra.run.dir={run}"
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    meta = yaml.safe_load((tmp_path / "best" / ARCH_FILE).read_text())
    assert meta["arch"] == [48] and meta["search"]["val_acc"] == 0.93 and meta["budget"] == {"max_params": 5000}
    proc = run_cli(
        "supernet-export",
        f"search_dir={search}",
        f"out={tmp_path / 'b'}",
        "budget.max_params=100",
        f"hydra.run.dir={run}",
    )
    assert proc.returncode == 2 and "max_params=100" in proc.stderr and not (tmp_path / "b").exists()
    assert proc.stderr.count("\n") == 1  # one line, no traceback


def test_old_import_paths_still_work():
    """`Subnet` and `load_subnet` live in supernet.io.subnet; the export module and the top level
    still hand out the same objects."""
    import supernet
    import supernet.io.export as export_mod
    import supernet.io.subnet as subnet_mod

    assert export_mod.load_subnet is subnet_mod.load_subnet is supernet.load_subnet
    assert export_mod.Subnet is subnet_mod.Subnet and export_mod.ARCH_FILE == subnet_mod.ARCH_FILE == ARCH_FILE
