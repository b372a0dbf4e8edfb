"""Ensembles of the found subnets (``retrain.ensemble=K``): real tiny pipelines on digits and diabetes,
run in-process (`run_pipeline`, what ``supernet`` runs), then the export read back and run in ONNX."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
import torch

from supernet.commands.pipeline import check_pipeline_config, run_pipeline, summary_md
from supernet.errors import UsageError

from conftest import make_cfg

# Seconds, not minutes: a 1-epoch supernet of depth <= 2 and width <= 32, a 16-arch search.
TINY = [
    "trainer.max_epochs=1",
    "trainer.enable_progress_bar=false",
    "space.depth.max=2",
    "space.width.max=32",
    "search.budget=16",
    "search.population=8",
    "search.tournament=3",
    "search.parents=4",
    "search.finetune.top=2",  # fewer finalists than members: the third comes from the inherited order
    "search.finetune.steps=5",
    "retrain.max_epochs=2",
    "logger=none",
    "figures=false",
    "export.onnx=false",
]


def _pipeline(tmp_path, *overrides: str, name: str = "run"):
    cfg = make_cfg("pipeline", [*TINY, *overrides])
    check_pipeline_config(cfg)
    out = tmp_path / name
    out.mkdir()
    result, _ = run_pipeline(cfg, out)
    return cfg, out, result


@pytest.fixture(scope="module")
def top3(tmp_path_factory, one_thread_module):
    tmp = tmp_path_factory.mktemp("ensemble_top")
    started = time.perf_counter()
    cfg, out, result = _pipeline(tmp, "retrain.ensemble=3")
    return {"cfg": cfg, "out": out, "result": result, "wall_s": time.perf_counter() - started}


@pytest.fixture(scope="module")
def one_thread_module():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_top_k_members_are_distinct_feasible_archs_and_totals_add_up(top3):
    result = top3["result"]
    e = result["ensemble"]
    assert e["k"] == 3 and e["from"] == "top" and len(e["members"]) == 3
    archs = [tuple(m["arch"]) for m in e["members"]]
    assert len(set(archs)) == 3
    assert archs[0] == tuple(result["winner"]["arch"])  # the winner is member 0
    assert e["params"] == sum(m["params"] for m in e["members"])
    assert e["flops"] == sum(m["flops"] for m in e["members"])
    assert e["members"][0]["test_acc"] == result["winner"]["test_acc"]  # the retrained winner itself
    assert set(e) >= {"val_acc", "test_acc", "wall_s", "path"}
    assert e["test_acc"] > 0.8  # digits, even this tiny
    assert result["paths"]["ensemble"] == e["path"] == str(top3["out"] / "ensemble" / "subnet")
    assert "ensemble" in result["phases"]
    for i in range(3):
        assert (top3["out"] / "ensemble" / "members" / str(i) / "subnet" / "model.safetensors").is_file()
    # Member 1 and 2 were exported from the supernet first (within the search's budget).
    assert (top3["out"] / "ensemble" / "members" / "1" / "source" / "arch.yaml").is_file()
    # The re-ranked finalists come first (in their fine-tuned order), then the inherited order.
    finalists = json.loads((top3["out"] / "search" / "result.json").read_text())["finetune"]["finalists"]
    assert archs[:2] == [tuple(f["arch"]) for f in sorted(finalists, key=lambda f: f["finetuned_rank"])]
    line = next(li for li in (top3["out"] / "summary.md").read_text().splitlines() if li.startswith("- ensemble"))
    assert line.startswith(f"- ensemble of 3 (top): 3 members, {e['params']:,} params, val ")
    assert line.endswith(f"**test {100 * e['test_acc']:.2f}%**")


def test_the_loaded_ensemble_averages_its_members_probabilities(top3):
    from supernet import load_subnet
    from supernet.data.datasets import load_data
    from supernet.io.ensemble import EnsembleSubnet

    e = top3["result"]["ensemble"]
    model = load_subnet(e["path"])
    assert isinstance(model, EnsembleSubnet) and len(model.members) == 3
    assert [list(a) for a in model.archs] == [m["arch"] for m in e["members"]]
    assert model.num_params() == e["params"]
    members = [load_subnet(m["path"]) for m in e["members"]]
    bundle = load_data(top3["cfg"].data)
    raw = bundle.test_x[:64] * bundle.std[0] + bundle.mean[0]  # digits: one channel
    with torch.no_grad():
        mean_proba = torch.stack([m(raw).softmax(-1) for m in members]).mean(0)
        out = model(raw)
    assert torch.allclose(out.softmax(-1), mean_proba, atol=1e-6)
    assert torch.allclose(out.exp().sum(-1), torch.ones(64), atol=1e-5)  # log-probabilities
    assert np.allclose(model.predict_proba(raw), mean_proba.numpy(), atol=1e-6)
    names = np.asarray(model.meta["class_names"])
    assert (model.predict(raw) == names[mean_proba.argmax(-1).numpy()]).all()
    meta = model.meta
    assert meta["kind"] == "ensemble" and meta["k"] == 3 and meta["verification"]["n_inputs"] > 0
    assert all(set(m) >= {"arch", "params", "flops", "val_acc", "test_acc"} for m in meta["members"])


def test_the_onnx_graph_averages_like_torch(top3):
    ort = pytest.importorskip("onnxruntime")
    from supernet import load_subnet

    path = top3["result"]["ensemble"]["path"]
    model = load_subnet(path)
    assert isinstance(model.meta["onnx"], dict), model.meta["onnx"]
    raw = torch.rand(16, model.in_features) * 16
    session = ort.InferenceSession(f"{path}/model.onnx", providers=["CPUExecutionProvider"])
    got = session.run(None, {"input": raw.numpy()})[0]
    with torch.no_grad():
        assert np.allclose(got, model(raw).numpy(), atol=1e-4)


def test_a_changed_ensemble_file_is_refused(top3, tmp_path):
    import shutil

    from supernet import load_subnet

    copy = tmp_path / "copy"
    shutil.copytree(top3["result"]["ensemble"]["path"], copy)
    weights = copy / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1
    weights.write_bytes(bytes(data))
    with pytest.raises(UsageError, match="does not match the sha256"):
        load_subnet(copy)


@pytest.mark.parametrize(
    ("edit", "fragment"),
    [
        (lambda m: m.update(members=[]), "an ensemble needs a non-empty list of members"),
        (lambda m: m.update(members=m["members"][:2]), "does not match the 2 members' archs in arch.yaml: unexpected"),
        (lambda m: m.update(kind="forest"), "kind='forest' is not subnet or ensemble"),
    ],
    ids=["no members", "a member missing", "unknown kind"],
)
def test_a_broken_ensemble_arch_yaml_is_one_clear_error(top3, tmp_path, edit, fragment):
    import shutil

    import yaml

    from supernet import load_subnet

    copy = tmp_path / "copy"
    shutil.copytree(top3["result"]["ensemble"]["path"], copy)
    meta = yaml.safe_load((copy / "arch.yaml").read_text())
    edit(meta)
    (copy / "arch.yaml").write_text(yaml.safe_dump(meta))
    with pytest.raises(UsageError, match=fragment):
        load_subnet(copy)


def test_resume_of_a_finished_run_does_not_redo_the_ensemble(top3):
    out = top3["out"]
    before = (out / "ensemble" / "result.json").stat().st_mtime_ns
    first = json.loads((out / "result.json").read_text())["ensemble"]
    result, _ = run_pipeline(top3["cfg"], out, resuming=True)
    assert (out / "ensemble" / "result.json").stat().st_mtime_ns == before
    assert result["ensemble"] == first and result["resumed"] is True
    assert "- ensemble of 3 (top)" in summary_md(result)


def test_a_killed_ensemble_resumes_from_its_finished_members(top3, tmp_path):
    import shutil

    out = tmp_path / "copy"
    shutil.copytree(top3["out"], out)
    (out / "ensemble" / "result.json").unlink()  # as if killed before the average was written
    shutil.rmtree(out / "ensemble" / "subnet")
    trained = out / "ensemble" / "members" / "2" / "metrics.json"
    before = trained.stat().st_mtime_ns
    result, _ = run_pipeline(top3["cfg"], out, resuming=True)
    assert trained.stat().st_mtime_ns == before  # member 2 was not retrained
    assert result["ensemble"]["test_acc"] == top3["result"]["ensemble"]["test_acc"]
    assert result["ensemble"]["path"] == str(out / "ensemble" / "subnet")


def test_retraining_an_ensemble_export_is_a_usage_error(top3, tmp_path):
    from dataclasses import replace

    from supernet.train.recipe_settings import RetrainSettings
    from supernet.train.retrain import retrain_subnet

    cfg, out = top3["cfg"], top3["out"]
    template = RetrainSettings.build(cfg.retrain).request(out / "subnet", out / "retrain", cfg.trainer, 0, False)
    request = replace(template, subnet_dir=top3["result"]["ensemble"]["path"], out_dir=tmp_path)
    with pytest.raises(UsageError, match="is an ensemble of 3 subnets; retraining takes one"):
        retrain_subnet(request)


def test_members_rank_feasible_archs_only_and_too_few_is_named():
    from supernet.train.ensemble import member_records

    def rec(arch, acc, feasible=True):
        return {"arch": arch, "params": sum(arch), "flops": 2 * sum(arch), "val_acc": acc, "feasible": feasible}

    history = [rec([8], 0.5), rec([64], 0.99, feasible=False), rec([16], 0.7), rec([24], 0.6), rec([32], 0.8)]
    search = {
        "objectives": ["val_acc"],
        "best": {**rec([16], 0.7), "finetuned_rank": 1},
        "finetune": {"finalists": [{**rec([32], 0.8), "finetuned_rank": 2}, {**rec([16], 0.7), "finetuned_rank": 1}]},
    }
    got = [m["arch"] for m in member_records(search, history, 4, "top")]
    assert got == [[16], [32], [24], [8]]  # winner, the other finalist, then by inherited val_acc
    assert [m["arch"] for m in member_records(search, history, 3, "seeds")] == [[16]] * 3
    with pytest.raises(UsageError, match="retrain.ensemble=5 but the search found 4 distinct feasible archs"):
        member_records(search, history, 5, "top")


def test_seeds_give_k_members_of_the_winner_with_different_weights(top3, tmp_path):
    from supernet import load_subnet

    ckpt = top3["result"]["paths"]["checkpoint"]
    auto = ["retrain.dropout=auto", "retrain.label_smoothing=auto"]  # the tables' default reaches each member
    _, out, result = _pipeline(
        tmp_path, f"ckpt_path={ckpt}", "retrain.ensemble=2", "retrain.ensemble_from=seeds", *auto
    )
    e = result["ensemble"]
    assert e["from"] == "seeds" and [m["seed"] for m in e["members"]] == [0, 1]
    assert all(m["arch"] == result["winner"]["arch"] for m in e["members"])
    a, b = (load_subnet(m["path"]) for m in e["members"])
    assert not torch.equal(a.layers[0].weight, b.layers[0].weight)
    assert e["params"] == 2 * result["winner"]["params"]


def test_a_regression_ensemble_averages_values(tmp_path):
    from supernet import load_subnet

    _, out, result = _pipeline(tmp_path, "data=diabetes", "retrain.ensemble=2", "retrain.max_epochs=1")
    e = result["ensemble"]
    assert result["metric"] == "rmse" and np.isfinite([e["val_rmse"], e["test_rmse"]]).all()
    model = load_subnet(e["path"])
    members = [load_subnet(m["path"]) for m in e["members"]]
    raw = torch.rand(8, model.in_features)
    with torch.no_grad():
        assert torch.allclose(model(raw), torch.stack([m(raw) for m in members]).mean(0), atol=1e-4)
    assert model.predict(raw).shape == (8,)
    assert isinstance(model.meta["onnx"], dict)  # the averaging graph, checked with onnxruntime
    assert "- ensemble of 2 (top): 2 members" in (out / "summary.md").read_text()


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        (["retrain.ensemble=0"], "retrain.ensemble=0 must be a whole number >= 1"),
        (["retrain.ensemble=-2"], "retrain.ensemble=-2 must be a whole number >= 1"),
        (
            ["retrain.ensemble_from=other"],
            "retrain.ensemble_from='other' must be one of ['top', 'seeds', 'folds', 'auto']",
        ),
    ],
)
def test_bad_ensemble_settings_are_refused_before_training(overrides, fragment):
    with pytest.raises(UsageError, match=fragment.replace("[", r"\[").replace("(", r"\(")):
        check_pipeline_config(make_cfg("pipeline", overrides))


def test_more_members_than_feasible_archs_is_refused_after_the_search(top3, tmp_path):
    ckpt = top3["result"]["paths"]["checkpoint"]
    # 12 fit the search's budget of 16 (checked before training); a tight constraint leaves fewer feasible.
    with pytest.raises(UsageError, match=r"retrain.ensemble=12 but the search found (\d+) distinct feasible archs"):
        _pipeline(tmp_path, f"ckpt_path={ckpt}", "retrain.ensemble=12", "search.constraints.max_params=1500")
    assert not (tmp_path / "run" / "subnet").exists()  # before the export and any retraining


@pytest.mark.slow
def test_the_command_line_builds_an_ensemble(tmp_path):
    from conftest import read_json, run_cli

    proc = run_cli("supernet", *TINY, "retrain.ensemble=2", f"hydra.run.dir={tmp_path}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = read_json(tmp_path / "result.json")
    assert result["ensemble"]["k"] == 2 and "- ensemble of 2 (top): 2 members" in proc.stdout


def test_folds_retrain_the_winner_on_each_fold_and_score_it_out_of_fold(top3, tmp_path):
    from supernet import load_subnet
    from supernet.data.datasets import load_data
    from supernet.train.folds import make_folds, pooled
    from supernet.train.retrain import outputs_of, training_form

    ckpt = top3["result"]["paths"]["checkpoint"]
    cfg, out, result = _pipeline(tmp_path, f"ckpt_path={ckpt}", "retrain.ensemble=3", "retrain.ensemble_from=folds")
    e = result["ensemble"]
    assert e["from"] == "folds" and [m["seed"] for m in e["members"]] == [0, 1, 2]
    assert all(m["arch"] == result["winner"]["arch"] for m in e["members"])
    bundle = load_data(cfg.data)
    x, y = pooled(bundle)
    folds = make_folds(bundle, 3, 0)
    rows = np.concatenate([f.val_rows for f in folds])
    assert sorted(rows.tolist()) == list(range(len(y)))  # the folds cut every train+val row once
    n_val = len(bundle.val_y)
    assert e["validation"] == f"out of fold: each of the {n_val} validation rows scored by the member that held it out"
    correct = 0
    for i, fold in enumerate(folds):
        metrics = json.loads((out / "ensemble" / "members" / str(i) / "metrics.json").read_text())
        assert metrics["fold"] == {"index": i, "k": 3, "seed": 0} and "copied_from" not in metrics
        member = training_form(load_subnet(e["members"][i]["path"]))
        held_out = outputs_of(member, x[torch.as_tensor(fold.val_rows)]).argmax(-1)
        right = held_out == y[fold.val_rows]
        assert metrics["val_acc"] == pytest.approx(right.float().mean().item())
        correct += int(right[torch.as_tensor(fold.val_rows) >= len(bundle.train_y)].sum())
    assert e["val_acc"] == pytest.approx(correct / n_val)  # each validation row scored by the member that held it out
    assert 0.3 < e["test_acc"] <= 1.0  # 10 digits: well above chance
    assert "- ensemble of 3 (folds): 3 members" in (summary := (out / "summary.md").read_text())
    assert f"out-of-fold val {e['val_acc']:.2%}" in summary
    # the run's model is the ensemble, the winner beside it
    assert json.loads((out / "result.json").read_text())["paths"]["model"] == e["path"]
    assert f"model: `{e['path']}` (the members' average" in summary
    assert f"winner alone: `{result['paths']['retrained_subnet']}`" in summary


def test_a_member_is_reused_only_for_the_same_fold(tmp_path):
    from supernet.train.ensemble import _trained

    member = tmp_path / "members" / "1"
    (member / "subnet").mkdir(parents=True)
    fold = {"index": 1, "k": 5, "seed": 0}
    (member / "metrics.json").write_text(json.dumps({"arch": [16], "seed": 1, "init": "inherited", "fold": fold}))
    assert _trained(member, [16], 1, "inherited", fold)["subnet"] == str(member / "subnet")
    assert _trained(member, [16], 1, "inherited", None) is None  # a seeds member is not a fold member
    assert _trained(member, [16], 1, "inherited", {**fold, "k": 3}) is None  # nor one of another cut
