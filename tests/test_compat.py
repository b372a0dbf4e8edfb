"""Files written before the package restructuring still load, score, search and retrain alike.

    .venv/bin/python -m pytest tests/test_compat.py -q                 # ~1.5 min on 2 CPU cores
    .venv/bin/python -m pytest tests/test_compat.py -q -m "not slow"   # no training, ~45 s

tests/fixtures/legacy/ holds a small digits supernet checkpoint, a finished search of it and an
export of one of its subnets, all written by commit a909b61 (its README and expected.json list
the commands); expected.json holds the numbers that code gave. Only interfaces that stay stable
across the restructuring are used: `from supernet import load_supernet, load_subnet` and the
console commands, run as subprocesses.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from supernet import SuperMLP, load_subnet, load_supernet

from conftest import read_json, run_cli

LEGACY = Path(__file__).resolve().parent / "fixtures" / "legacy"
CKPT = LEGACY / "supernet.ckpt"
EXPORT = LEGACY / "export"
SEARCH = LEGACY / "search"
EXPECTED = read_json(LEGACY / "expected.json")
# The search's settings: the resumed search must be asked for the ones it was written with.
SEARCH_ARGS = ["search.budget=60", "search.population=20", "seed=0", "logger=none"]


def first_digits(n: int = 5) -> torch.Tensor:
    """The raw inputs an export takes: sklearn's 8x8 digits scaled to [0, 1], flattened."""
    from sklearn.datasets import load_digits

    return torch.tensor(load_digits().data[:n], dtype=torch.float32) / 16.0


def ok(proc) -> None:
    assert proc.returncode == 0, proc.stderr[-3000:]


# ---------------------------------------------------------------------------- the checkpoint
def test_legacy_checkpoint_loads():
    sn = load_supernet(CKPT)
    want = EXPECTED["supernet"]
    assert isinstance(sn.model, SuperMLP)
    assert sn.space.to_dict() == want["space"]
    assert sn.space.size() == want["space_size"]
    assert sn.data["name"] == want["data_name"]
    assert (sn.data["in_features"], sn.data["num_classes"]) == (want["in_features"], want["num_classes"])
    assert sn.sha256 == want["sha256"]


def test_score_gives_the_legacy_inherited_accuracies(tmp_path):
    archs = tmp_path / "archs.json"
    archs.write_text(json.dumps(EXPECTED["score"]["archs"]))
    proc = run_cli(
        "supernet-score", f"ckpt_path={CKPT}", f"archs_file={archs}", "split=test", f"hydra.run.dir={tmp_path / 'run'}"
    )
    ok(proc)
    scores = read_json(tmp_path / "run" / "result.json")["scores"]
    assert scores == EXPECTED["score"]["scores"]  # val_acc and test_acc exactly, params and flops


# ---------------------------------------------------------------------------- the export
def test_legacy_export_loads_and_gives_its_logits():
    model = load_subnet(EXPORT)
    want = EXPECTED["export"]
    assert list(model.arch) == want["arch"]
    assert (model.in_features, model.num_classes) == (want["in_features"], want["num_classes"])
    assert model.num_params() == want["params"]
    with torch.no_grad():
        logits = model(first_digits())
    torch.testing.assert_close(logits, torch.tensor(want["logits_first5"]), rtol=0, atol=1e-6)
    assert logits.argmax(1).tolist() == want["argmax_first5"]


def test_legacy_onnx_gives_the_same_logits():
    ort = pytest.importorskip("onnxruntime")
    session = ort.InferenceSession(str(EXPORT / "model.onnx"), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    logits = session.run(None, {name: first_digits().numpy()})[0]
    torch.testing.assert_close(
        torch.from_numpy(logits), torch.tensor(EXPECTED["export"]["logits_first5"]), rtol=0, atol=1e-5
    )


def test_export_of_the_legacy_checkpoint_matches_the_legacy_export(tmp_path):
    out = tmp_path / "export"
    arch = EXPECTED["export"]["arch"]
    proc = run_cli(
        "supernet-export",
        f"ckpt_path={CKPT}",
        f"arch=[{','.join(map(str, arch))}]",
        f"out={out}",
        f"hydra.run.dir={tmp_path / 'run'}",
    )
    ok(proc)
    new, old = load_subnet(out).state_dict(), load_subnet(EXPORT).state_dict()
    assert sorted(new) == sorted(old)
    for key in old:
        torch.testing.assert_close(new[key], old[key], rtol=0, atol=1e-6, msg=key)


# ---------------------------------------------------------------------------- the search
@pytest.mark.parametrize(
    "top, arch_key",
    [
        ("0", "inherited_best_arch"),  # no re-ranking: the best by inherited val_acc
        pytest.param("2", "best_arch", marks=pytest.mark.slow),  # the search as run: 2 finalists fine-tuned
    ],
)
def test_resuming_the_finished_legacy_search_reports_its_best(tmp_path, top, arch_key):
    run_dir = tmp_path / "search"
    shutil.copytree(SEARCH, run_dir)
    # search_state.json records no checkpoint (and the fixture has no search_request.json): pass it.
    proc = run_cli(
        "supernet-search",
        f"resume={run_dir}",
        f"ckpt_path={CKPT}",
        *SEARCH_ARGS,
        f"search.finetune.top={top}",
        f"hydra.run.dir={tmp_path / 'hydra'}",
    )
    ok(proc)
    want = EXPECTED["search"]
    result = read_json(run_dir / "result.json")
    assert result["archs_scored_this_run"] == 0  # the state was loaded: nothing scored again
    assert (result["n_evaluations"], result["generations"]) == (want["n_evaluations"], want["generations"])
    assert result["stopped"] == want["stopped"]
    assert result["best"]["arch"] == want[arch_key]
    assert result["best"]["val_acc"] == want["best_val_acc"]
    if top != "0":
        # The fine-tune reruns: its loss matches to float32 summation order (threads change it).
        assert result["best"]["finetuned_loss"] == pytest.approx(want["best_finetuned_loss"], abs=1e-6)
        assert result["best"]["finetuned_acc"] == want["best_finetuned_acc"]
    assert (run_dir / "history.csv").read_text() == (SEARCH / "history.csv").read_text()


def test_a_new_search_of_the_legacy_checkpoint_retraces_the_legacy_one(tmp_path):
    run_dir = tmp_path / "search"
    proc = run_cli(
        "supernet-search", f"ckpt_path={CKPT}", *SEARCH_ARGS, "search.finetune.top=0", f"hydra.run.dir={run_dir}"
    )
    ok(proc)
    assert (run_dir / "history.csv").read_text() == (SEARCH / "history.csv").read_text()
    assert read_json(run_dir / "result.json")["best"]["arch"] == EXPECTED["search"]["inherited_best_arch"]


# ---------------------------------------------------------------------------- retraining
@pytest.mark.slow
def test_retraining_the_legacy_export_reproduces_its_metrics(tmp_path):
    subnet = tmp_path / "export"
    shutil.copytree(EXPORT, subnet)
    proc = run_cli(
        "supernet-retrain",
        f"subnet={subnet}",
        "init=inherited",
        "trainer.max_epochs=1",
        "trainer.deterministic=true",
        "trainer.enable_progress_bar=false",
        "logger=none",
        f"hydra.run.dir={tmp_path / 'run'}",
    )
    ok(proc)
    metrics = read_json(tmp_path / "run" / "result.json")["metrics"]
    want = EXPECTED["retrain"]
    assert {k: metrics[k] for k in want} == want  # val_acc and test_acc exactly, epochs, steps
    retrained = load_subnet(metrics["subnet"])
    assert list(retrained.arch) == want["arch"]
