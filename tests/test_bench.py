"""`supernet-bench` measures for real: no timing is asserted, only what a bug would break (a figure
lost or undocumented, a ratio of the wrong timings, a NaN or zero, a table that misquotes bench.json).

    .venv/bin/python -m pytest tests/test_bench.py -q
"""

import math
import re

import pytest
from omegaconf import OmegaConf

from supernet.commands import bench
from supernet.commands.common import CONF_DIR
from supernet.data.datasets import load_data

from conftest import read_json, run_cli

# Figures measured only on a GPU (with bf16) or with pipeline=true: absent from the run below.
GPU_OR_PIPELINE = {
    "sandwich_bf16_epoch_s",
    "bf16_epoch_over_fp32",
    "peak_gpu_mb",
    "pipeline_s",
    "pipeline_test_acc",
    "pipeline_phases_s",
    "pipeline_peak_rss_mb",
    "pipeline_phase_share",
    "pipeline_winner_epoch_s",
    "job_over_winner_epoch",
    "pipeline_error",
    "search_over_train",
    "subset_scoring_speedup",
    "subset_search_s",
    "full_search_s",
    "subset_winner",
    "subset_error",
}
# Each ratio as bench.py's docstring defines it: (numerator, denominator) among bench.json's raw figures.
RATIOS = {
    "supernet_epoch_over_plain": ("uniform_epoch_s", "plain_epoch_s"),
    "sandwich_epoch_over_uniform": ("sandwich_epoch_s", "uniform_epoch_s"),
    "ema_epoch_over_sandwich": ("sandwich_ema_epoch_s", "sandwich_epoch_s"),
    "norm_epoch_over_ema": ("sandwich_ema_norm_epoch_s", "sandwich_ema_epoch_s"),
    "step_overhead_over_plain": ("supernet_step_us_tiny", "plain_step_us_tiny"),
    "bf16_ops_over_fp32": ("sandwich_ops_per_step_bf16", "sandwich_ops_per_step_fp32"),
    "batched_over_naive": ("evals_per_s_batched", "evals_per_s_naive"),
    "norm_scoring_over_plain": ("evals_per_s_batched", "evals_per_s_batched_norm"),
}


def documented_figures() -> set[str]:
    """The ``names`` that head the bullets of bench.py's docstring (before each bullet's first ': ')."""
    names: set[str] = set()
    for line in bench.__doc__.splitlines():
        if line.startswith("- "):
            names.update(re.findall(r"``(\w+)``", line.split(": ")[0]))
    return names


def table_rows(text: str) -> dict[str, str]:
    """``name -> value`` of the table `format_table` prints (under its ``figure  value`` header)."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.split() == ["figure", "value"]) + 2
    rows = {}
    for line in lines[start:]:
        if not line.strip():
            break
        name, _, value = line.partition("  ")
        rows[name] = value.strip()
    return rows


class EveryFigure(dict):
    """A figures dict that holds every name: `format_table` of it shows every row it knows."""

    def __contains__(self, key: object) -> bool:
        return True

    def __getitem__(self, key: str) -> int:
        return 1


def test_every_table_row_is_a_documented_figure():
    assert set(table_rows(bench.format_table(EveryFigure()))) <= documented_figures()


@pytest.mark.slow
def test_bench_quick_writes_every_figure(tmp_path):
    proc = run_cli(
        "supernet-bench",
        "quick=true",
        "epochs=1",
        "n_archs=30",
        "naive_batches=5",
        "pipeline=false",
        f"hydra.run.dir={tmp_path}",
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    figures = read_json(tmp_path / "bench.json")
    # Exactly the documented figures: a new one needs its line in the docstring, a lost one fails.
    assert set(figures) == documented_figures() - GPU_OR_PIPELINE
    numbers = {k: v for k, v in figures.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    for key, value in numbers.items():
        assert math.isfinite(value) and value > 0, (key, value)
    # Every ratio is the documented one of the raw figures beside it (rounded on both sides).
    assert {k for k in figures if "_over_" in k} == set(RATIOS) | {"naive_over_oneshot_per_candidate"}
    for ratio, (num, den) in RATIOS.items():
        assert figures[ratio] == pytest.approx(figures[num] / figures[den], rel=2.5e-2, abs=2e-3), (
            ratio
        )  # 3-4 digits each
    per_candidate = figures["naive_candidate_s"] * figures["evals_per_s_batched"]
    assert figures["naive_over_oneshot_per_candidate"] == pytest.approx(per_candidate, rel=1e-2)
    # Autocast adds casts: the reason trainer.precision=auto is float32 (op counts are exact, not timings).
    assert figures["sandwich_ops_per_step_bf16"] > figures["sandwich_ops_per_step_fp32"]
    # The context agrees with the data it names: digits, 30 sampled archs (a few repeat), CPU.
    assert figures["device"].startswith("cpu")
    assert f"{figures['val_samples']} val" in figures["data"]
    space = figures["space"]
    assert f"{space['in_features']} features, {space['num_classes']} classes" in figures["data"]
    assert 20 <= figures["n_archs"] <= 30
    # The printed table is what a user reads: every ratio, each value as bench.json has it.
    rows = table_rows(proc.stdout)
    assert set(RATIOS) <= set(rows)
    assert rows == {k: str(figures[k]) for k in rows}


@pytest.mark.slow
def test_pipeline_figures_count_the_job_in_epochs_of_its_winner(tmp_path):
    # The speed suite's pipeline=true on digits at tiny settings: the job, then its winner's epoch.
    tiny = ["trainer.max_epochs=1", "retrain.max_epochs=1", "search.budget=40", "search.population=20"]
    cfg = OmegaConf.create({"seed": 0, "epochs": 1, "pipeline_overrides": [*tiny, "logger=none", "figures=false"]})
    data_cfg = OmegaConf.to_container(OmegaConf.load(CONF_DIR / "data" / "digits.yaml"))
    figures = bench.run_pipeline(cfg, data_cfg, load_data(data_cfg), tmp_path)
    assert "pipeline_error" not in figures, figures
    assert figures["pipeline_winner_epoch_s"] > 0 and figures["job_over_winner_epoch"] > 0
    ratio = figures["pipeline_s"] / figures["pipeline_winner_epoch_s"]
    assert figures["job_over_winner_epoch"] == pytest.approx(ratio, rel=2e-2)
    shares = figures["pipeline_phase_share"]
    assert set(shares) == {*figures["pipeline_phases_s"], "other"}
    assert sum(shares.values()) == pytest.approx(1.0, abs=0.01)
    assert {"pipeline_phase_share", "pipeline_winner_epoch_s", "job_over_winner_epoch"} <= documented_figures()


@pytest.mark.slow
@pytest.mark.parametrize("job_fidelity", ["subset", "full"])
def test_fidelity_figures_rerun_the_jobs_search_at_the_other_fidelity(tmp_path, digits_run, job_fidelity):
    # A pipeline's out dir as the bench leaves it: its supernet, and its search at `job_fidelity`.
    (tmp_path / "pipeline").mkdir()
    (tmp_path / "pipeline" / "train").symlink_to(digits_run)
    settings = ["search.budget=60", "search.population=20", "search.finetune.top=2", "search.subset.size=0.5"]
    proc = run_cli(
        "supernet-search",
        f"ckpt_path={digits_run}",
        f"search.fidelity={job_fidelity}",
        *settings,
        "logger=none",
        f"hydra.run.dir={tmp_path / 'pipeline' / 'search'}",
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    figures = bench.subset_search_figures(OmegaConf.create({"seed": 0}), tmp_path)
    other = "full" if job_fidelity == "subset" else "subset"
    again = read_json(tmp_path / f"search_{other}" / "result.json")
    job = read_json(tmp_path / "pipeline" / "search" / "result.json")
    # The rerun is the job's search but for its fidelity: same budget, finalists and subset size.
    asked = read_json(tmp_path / f"search_{other}" / "search_request.json")["search"]
    assert (asked["fidelity"], asked["finetune"]["top"], asked["subset"]["size"]) == (other, 2, 0.5)
    assert again["n_evaluations"] == job["n_evaluations"] == 60
    full, subset = (again, job) if other == "full" else (job, again)
    assert subset["fidelity"]["rows"] == 144  # half of digits' 287 validation rows
    assert figures["subset_scoring_speedup"] == round(full["scoring_wall_s"] / subset["scoring_wall_s"], 2)
    assert (figures["subset_search_s"], figures["full_search_s"]) == (subset["wall_time_s"], full["wall_time_s"])
    assert figures["subset_winner"]["arch"] == subset["best"]["arch"]
    assert figures["subset_winner"]["full"] == full["best"]["arch"]
