"""``supernet-bench``: what makes supernet fast, measured as ratios in one process.

    supernet-bench quick=true     # digits: under a minute on a 2-core CPU
    supernet-bench                # Fashion-MNIST with the 16-1024 space
    supernet-bench suite=job      # the default Fashion-MNIST job in epochs of its winner (bench_job.py)

Writes ``bench.json`` in its run dir and prints its headline figures as a table. Every model is
trained through Lightning on device-resident data with the same batch and optimiser
(`bench_figures.BENCH_OPTIM`), so a ratio compares the models, not their set-ups. Results and
how to read them: docs/experiments/speed.md. The figures of bench.json:

- ``device``, ``torch``, ``data``, ``space``, ``batch_size``: what was measured, and where.
- ``plain_epoch_s``, ``uniform_epoch_s``, ``sandwich_epoch_s``: one epoch of the plain largest MLP
  of the space, of the supernet under uniform sampling, under the sandwich rule (4 paths a step).
- ``supernet_epoch_over_plain``, ``sandwich_epoch_over_uniform``: uniform / plain, sandwich / uniform.
- ``sandwich_ema_epoch_s``, ``ema_epoch_over_sandwich``: the sandwich epoch with the jobs' default
  weight average (``train.ema_decay``), and over the one without it.
- ``sandwich_ema_norm_epoch_s``, ``norm_epoch_over_ema``: that epoch also with the jobs' default
  ``model.norm=batch`` (the default training step), and over the one without it.
- ``plain_step_us_tiny``, ``supernet_step_us_tiny``, ``step_overhead_over_plain``: the same per step
  for a tiny space (widths 8-32, batch 32), where compute is next to nothing: the per-step
  framework/launch overhead, which is what decides a GPU step of MNIST-scale MLPs.
- ``sandwich_ops_per_step_fp32``, ``sandwich_ops_per_step_bf16``, ``bf16_ops_over_fp32``:
  kernel-launching operations of one sandwich step in float32 and under bf16 autocast (counted on
  the CPU: `supernet.train.op_count`): why ``trainer.precision=auto`` is float32 (with TF32
  matmuls) rather than bf16.
- ``sandwich_bf16_epoch_s``, ``bf16_epoch_over_fp32`` (only on a GPU with bf16): the sandwich epoch
  under bf16 autocast, and over the float32 one.
- ``n_archs``, ``val_samples``, ``evals_per_s_batched``, ``evals_per_s_naive``, ``batched_over_naive``:
  inherited-weight scoring of random archs on the validation split, prefix-tree batched vs one
  extracted model at a time.
- ``evals_per_s_batched_norm``, ``norm_scoring_over_plain``: the batched scorer with
  ``model.norm=batch`` (each node's statistics measured on the calibration images first), and its
  time over the plain scorer's.
- ``naive_candidate_s``, ``naive_over_oneshot_per_candidate`` (single-channel images only): one
  candidate scored the naive way (trained one epoch from scratch through a torchvision-style
  DataLoader with per-sample ToTensor, batch 64, then a pass over the training set), timed on
  ``naive_batches`` batches and scaled to the epoch; and over one batched inherited evaluation.
- ``pipeline_s``, ``pipeline_test_acc``, ``pipeline_phases_s``, ``pipeline_peak_rss_mb`` (``pipeline=true``):
  the full ``supernet`` job as a user runs it, in its own process (so its memory is its own).
- ``pipeline_phase_share``, ``pipeline_winner_epoch_s``, ``job_over_winner_epoch`` (``pipeline=true``):
  each phase's wall over the job's (``other``: start-up and the rest), one plain training epoch of
  the job's winner at the retraining's batch size, timed here after the job, and the job's wall
  over it (``suite=job``: the median of three runs, `supernet.commands.bench_job`).
- ``search_over_train`` (``pipeline=true``): that job's search phase wall over its training phase's.
- ``subset_scoring_speedup``, ``subset_search_s``, ``full_search_s``, ``subset_winner``
  (``pipeline=true``): the same job's search run again on its supernet at the other
  ``search.fidelity`` (its other settings the job's); the full-fidelity search's scoring wall over
  the subset one's, both walls, and the subset search's winner (with its full-split score).
- ``pipeline_error``, ``subset_error`` (instead of those, when that job or that search fails): the
  last line of its stderr.
- ``startup_s``: the median wall time of ``supernet-score --help`` in a fresh process (3 runs):
  what a command costs before it does any work.
- ``peak_rss_mb``, ``peak_gpu_mb`` (on a GPU): peak memory of this process.
"""

from __future__ import annotations

import json
import platform
import random
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from omegaconf import DictConfig, OmegaConf

from supernet.commands.bench_figures import (
    BENCH_OPTIM,
    BENCH_SANDWICH,
    PlainModule,
    bf16_cost,
    naive_candidate_s,
    peak_rss_mb,
    step_overhead,
    time_epoch,
)
from supernet.commands.bench_job import job_run, phase_figures, winner_epoch_s
from supernet.commands.common import CONF_DIR
from supernet.config import build_space
from supernet.core.device import pick_device
from supernet.core.space import SearchSpace
from supernet.core.supermlp import SuperMLP
from supernet.data.datasets import load_data
from supernet.errors import UsageError
from supernet.evaluation.inherited import InheritedEvaluator
from supernet.files import to_plain, write_json
from supernet.train.callbacks import EMAWeights
from supernet.train.module import SupernetModule, TensorDataModule

SUITES = ("speed", "tabular", "job")


def run_bench(cfg: DictConfig, out_dir: Path) -> dict[str, Any]:
    """Measure every figure above, write bench.json, print the table (``suite=tabular``: the
    tables benchmark of `supernet.commands.bench_tabular` instead)."""
    if cfg.suite not in SUITES:
        raise UsageError(f"suite={cfg.suite!r} must be one of {', '.join(SUITES)}")
    if cfg.suite == "tabular":
        from supernet.commands.bench_tabular import run_tabular

        return run_tabular(cfg, out_dir)
    if cfg.suite == "job":
        from supernet.commands.bench_job import run_job_suite

        return run_job_suite(cfg, out_dir)
    data_cfg = to_plain(cfg.data)
    if cfg.quick:
        data_cfg = to_plain(OmegaConf.load(CONF_DIR / "data" / "digits.yaml"))
    device = pick_device(str(cfg.device))
    torch.set_float32_matmul_precision("high")
    pl.seed_everything(int(cfg.seed), verbose=False)
    bundle = load_data(data_cfg)
    space = build_space(cfg.space if not cfg.quick else {}, data_cfg, bundle.in_features, bundle.num_classes)
    figures = _context(cfg, device, bundle, space)
    figures.update(training_figures(cfg, bundle, space, device))
    figures.update(scoring_figures(cfg, bundle, space, device))
    if bundle.input_shape[0] == 1 and len(bundle.input_shape) == 3:
        figures.update(naive_figures(cfg, bundle, space, device, figures["evals_per_s_batched"]))
    if cfg.pipeline:
        figures.update(run_pipeline(cfg, data_cfg, bundle, out_dir))
        if "pipeline_s" in figures:
            figures.update(subset_search_figures(cfg, out_dir))
    figures["startup_s"] = startup_s()
    figures["peak_rss_mb"] = round(peak_rss_mb(), 1)
    if device.type == "cuda":
        figures["peak_gpu_mb"] = round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
    write_json(out_dir / "bench.json", figures)
    print(format_table(figures))
    return {"task": "bench", "status": "ok", **figures, "paths": {"bench": str(out_dir / "bench.json")}}


def _context(cfg: DictConfig, device: torch.device, bundle, space: SearchSpace) -> dict[str, Any]:
    """What was measured, and where: the first figures of bench.json."""
    return {
        "device": torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)",
        "torch": torch.__version__,
        "data": bundle.summary(),
        "space": space.to_dict(),
        "batch_size": int(cfg.batch_size),
    }


def training_figures(cfg: DictConfig, bundle, space: SearchSpace, device: torch.device) -> dict[str, Any]:
    """Epoch times of the plain MLP and the supernet's training steps, per-step overhead, bf16."""
    batch, epochs = int(cfg.batch_size), int(cfg.epochs)

    def datamodule() -> TensorDataModule:
        return TensorDataModule(bundle, batch, 10_000, seed=int(cfg.seed))

    def supernet(sampler: dict, norm: str = "none") -> SupernetModule:
        return SupernetModule(space.to_dict(), bundle.info(), sampler, BENCH_OPTIM, model={"norm": norm})

    plain_s = time_epoch(PlainModule(SuperMLP(space).extract(space.largest())), datamodule(), epochs, device)
    uniform_s = time_epoch(supernet({"name": "uniform"}), datamodule(), epochs, device)
    sandwich_s = time_epoch(supernet(BENCH_SANDWICH), datamodule(), epochs, device)
    # The jobs' default also keeps an EMA of the weights (train.ema_decay): one fused lerp per step.
    ema_s = time_epoch(supernet(BENCH_SANDWICH), datamodule(), epochs, device, callbacks=[EMAWeights(0.99)])
    # ... and normalises each path with its batch's statistics (model.norm=batch): the jobs' step.
    norm_s = time_epoch(supernet(BENCH_SANDWICH, "batch"), datamodule(), epochs, device, callbacks=[EMAWeights(0.99)])
    figures = {
        "plain_epoch_s": round(plain_s, 4),
        "uniform_epoch_s": round(uniform_s, 4),
        "sandwich_epoch_s": round(sandwich_s, 4),
        "supernet_epoch_over_plain": round(uniform_s / plain_s, 3),
        "sandwich_epoch_over_uniform": round(sandwich_s / uniform_s, 3),
        "sandwich_ema_epoch_s": round(ema_s, 4),
        "ema_epoch_over_sandwich": round(ema_s / sandwich_s, 3),
        "sandwich_ema_norm_epoch_s": round(norm_s, 4),
        "norm_epoch_over_ema": round(norm_s / ema_s, 3),
    }
    figures.update(step_overhead(bundle, space, device, epochs, int(cfg.seed)))
    figures.update(bf16_cost(bundle, space, device, epochs, int(cfg.seed), batch, sandwich_s))
    return figures


def scoring_figures(cfg: DictConfig, bundle, space: SearchSpace, device: torch.device) -> dict[str, Any]:
    """Inherited-weight scoring of random archs: prefix-tree batched, one at a time, and batched
    with ``model.norm=batch``."""
    rng = random.Random(int(cfg.seed))
    archs = list(dict.fromkeys(space.sample(rng) for _ in range(int(cfg.n_archs))))
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    evaluator = InheritedEvaluator(SuperMLP(space), space, bundle.val_x, bundle.val_y, device=device)
    batched_s = _timed_scoring(evaluator, archs, sync)
    n_naive = min(len(archs), max(20, len(archs) // 5))
    t0 = time.perf_counter()
    evaluator.accuracies_naive(archs[:n_naive])
    sync()
    naive_s = time.perf_counter() - t0
    figures: dict[str, Any] = {
        "n_archs": len(archs),
        "val_samples": len(bundle.val_y),
        "evals_per_s_batched": round(len(archs) / batched_s, 1),
        "evals_per_s_naive": round(n_naive / naive_s, 1),
    }
    figures["batched_over_naive"] = round(figures["evals_per_s_batched"] / figures["evals_per_s_naive"], 2)
    # With model.norm=batch each prefix-tree node also measures its statistics on the calibration images.
    normed = SuperMLP(space, norm="batch").calibrate(bundle.train_x)
    norm_s = _timed_scoring(InheritedEvaluator(normed, space, bundle.val_x, bundle.val_y, device=device), archs, sync)
    figures["evals_per_s_batched_norm"] = round(len(archs) / norm_s, 1)
    figures["norm_scoring_over_plain"] = round(figures["evals_per_s_batched"] / figures["evals_per_s_batched_norm"], 3)
    return figures


def _timed_scoring(evaluator: InheritedEvaluator, archs: list, sync: Callable[[], None]) -> float:
    """Seconds to score `archs` batched, after a warm-up (allocator, kernels) on the first five."""
    evaluator.accuracies(archs[:5])
    sync()
    t0 = time.perf_counter()
    evaluator.accuracies(archs)
    sync()
    return time.perf_counter() - t0


def naive_figures(cfg: DictConfig, bundle, space: SearchSpace, device: torch.device, evals_per_s: float) -> dict:
    """One candidate trained and scored the naive way, and over one batched inherited evaluation."""
    cand_s = naive_candidate_s(bundle, space, space.middle(), device, int(cfg.naive_batches))
    per_eval_oneshot = 1.0 / evals_per_s
    return {
        "naive_candidate_s": round(cand_s, 3),
        "naive_over_oneshot_per_candidate": round(cand_s / per_eval_oneshot, 1),
    }


def run_pipeline(cfg: DictConfig, data_cfg: dict, bundle, out_dir: Path) -> dict[str, Any]:
    """The full `supernet` job as a user runs it (its own process: RSS measured on its own), and
    its wall in plain epochs of its own winner."""
    run_dir = out_dir / "pipeline"
    overrides = [f"data={data_cfg['name']}", f"seed={cfg.seed}", *(str(o) for o in cfg.pipeline_overrides)]
    wall, result = job_run(overrides, run_dir)
    if "error" in result:
        return {"pipeline_error": result["error"]}
    phases = result.get("phases") or {}
    train_s, search_s = (phases.get(k, {}).get("wall_s") for k in ("train", "search"))
    _, epoch_s = winner_epoch_s(run_dir, bundle, int(cfg.epochs), int(cfg.seed))
    return {
        "pipeline_s": round(wall, 2),
        "search_over_train": round(search_s / train_s, 3) if train_s and search_s else None,
        "pipeline_test_acc": (result.get("winner") or {}).get("test_acc"),
        "pipeline_phases_s": {k: v.get("wall_s") for k, v in phases.items()},
        "pipeline_phase_share": phase_figures(wall, result)["phase_share"],
        "pipeline_peak_rss_mb": round(peak_rss_mb(resource.RUSAGE_CHILDREN), 1),
        "pipeline_winner_epoch_s": round(epoch_s, 3),
        "job_over_winner_epoch": round(wall / epoch_s, 1),
    }


def subset_search_figures(cfg: DictConfig, out_dir: Path) -> dict[str, Any]:
    """The pipeline's search again on its own supernet at the other fidelity (``full`` when the
    job scored on a subset, as on Fashion-MNIST; else ``subset``), its other settings the job's."""
    job_dir = out_dir / "pipeline" / "search"
    job = json.loads((job_dir / "result.json").read_text())
    asked = json.loads((job_dir / "search_request.json").read_text())["search"]
    other = "full" if asked["fidelity"] == "subset" else "subset"
    run_dir = out_dir / f"search_{other}"
    args = [f"ckpt_path={out_dir / 'pipeline' / 'train'}", f"search.fidelity={other}", f"seed={cfg.seed}"]
    args += [f"search.{key}={_override_value(asked[key])}" for key in ("budget", "tolerance")]
    args += [f"search.subset.{key}={asked['subset'][key]}" for key in ("size", "top", "margin")]
    args += [f"search.finetune.top={asked['finetune']['top']}", "logger=none", f"hydra.run.dir={run_dir}"]
    proc = subprocess.run([sys.executable, "-m", "supernet.commands", "search", *args], capture_output=True, text=True)
    if proc.returncode != 0:
        return {"subset_error": (proc.stderr.strip().splitlines() or ["?"])[-1]}
    again = json.loads((run_dir / "result.json").read_text())
    full, subset = (again, job) if other == "full" else (job, again)
    key = "val_acc" if subset.get("metric", "accuracy") == "accuracy" else f"val_{subset['metric']}"
    best = subset.get("best") or {}
    return {
        "subset_scoring_speedup": round(full["scoring_wall_s"] / subset["scoring_wall_s"], 2),
        "subset_search_s": subset.get("wall_time_s"),
        "full_search_s": full.get("wall_time_s"),
        "subset_winner": {"arch": best.get("arch"), key: best.get(key), "full": (full.get("best") or {}).get("arch")},
    }


def _override_value(value: Any) -> str:
    return "null" if value is None else str(value)


def startup_s(repeats: int = 3) -> float:
    """Median wall seconds of ``supernet-score --help`` in a fresh interpreter."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "supernet.commands", "score", "--help"], capture_output=True, check=False)
        times.append(time.perf_counter() - t0)
    return round(sorted(times)[len(times) // 2], 3)


def format_table(figures: dict[str, Any]) -> str:
    """The headline figures, one ``name  value`` line each, in reading order."""
    keys = [
        "device",
        "data",
        "supernet_epoch_over_plain",
        "sandwich_epoch_over_uniform",
        "ema_epoch_over_sandwich",
        "norm_epoch_over_ema",
        "step_overhead_over_plain",
        "plain_step_us_tiny",
        "supernet_step_us_tiny",
        "sandwich_ops_per_step_fp32",
        "sandwich_ops_per_step_bf16",
        "bf16_ops_over_fp32",
        "bf16_epoch_over_fp32",
        "plain_epoch_s",
        "uniform_epoch_s",
        "sandwich_epoch_s",
        "evals_per_s_batched",
        "evals_per_s_naive",
        "batched_over_naive",
        "norm_scoring_over_plain",
        "naive_candidate_s",
        "naive_over_oneshot_per_candidate",
        "pipeline_s",
        "pipeline_test_acc",
        "pipeline_phases_s",
        "pipeline_phase_share",
        "pipeline_peak_rss_mb",
        "pipeline_winner_epoch_s",
        "job_over_winner_epoch",
        "search_over_train",
        "subset_scoring_speedup",
        "subset_search_s",
        "full_search_s",
        "subset_winner",
        "startup_s",
        "peak_rss_mb",
        "peak_gpu_mb",
        "pipeline_error",
    ]
    width = max(len(k) for k in keys)
    lines = [f"{'figure':<{width}}  value", f"{'-' * width}  -----"]
    lines += [f"{k:<{width}}  {figures[k]}" for k in keys if k in figures]
    return "\n".join(lines)
