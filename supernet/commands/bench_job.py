"""``supernet-bench suite=job``: the whole ``supernet`` job as a user waits for it, in epochs of its winner.

    supernet-bench suite=job                      # the default Fashion-MNIST job, 3 runs, and a 569-row table job
    supernet-bench suite=job quick=true           # digits (what the tests run, with short settings)
    supernet-bench suite=job job.repeats=1 job.table=false 'job.overrides=[retrain.max_epochs=20]'

Wall times on a shared machine vary from day to day, so the headline figure is a ratio measured in
the same run: the job's wall time (its own process, start-up included) over the wall time of one
plain training epoch of the job's own winner at the retraining's batch size, timed in this process
right after the job (`bench_figures.time_epoch`: the fastest of ``epochs``). Writes ``job.json``:

- ``device``, ``torch``, ``data``: where, and on what (``threads``: torch's CPU threads here).
- ``runs``: one record per run of the job: ``wall_s``, ``phases_s`` (each phase's own wall),
  ``phase_share`` (each phase's wall over the job's; ``other``: start-up, imports and writing the
  results), ``winner``, ``params``, ``val_acc`` and ``test_acc`` of the retrained winner,
  ``batch_size`` and ``winner_epoch_s`` (its plain epoch), ``job_over_winner_epoch``.
- ``job_s``, ``winner_epoch_s``, ``job_over_winner_epoch``, ``test_acc``, ``phase_share``: the
  medians over the runs (the share phase by phase).
- ``table`` (``job.table=true``): a small-table job, ``supernet data=csv`` on scikit-learn's breast
  cancer table (569 rows) written as CSV: ``rows``, ``wall_s``, ``phases_s``, ``phase_share``,
  ``test_acc``: where a small table's job spends its time.
- ``error`` (in a run or the table record, instead of its figures): the last line of the job's stderr.

Figures and how they moved: docs/experiments/speed.md.
"""

from __future__ import annotations

import json
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn

from supernet.commands.bench_figures import PlainModule, time_epoch
from supernet.commands.common import CONF_DIR
from supernet.data.datasets import DataBundle, load_data
from supernet.errors import UsageError
from supernet.files import to_plain, write_json
from supernet.io.subnet import Subnet, load_subnet
from supernet.train.module import TensorDataModule

# Every job the bench runs: no progress bar (what a log shows, not what a user waits for otherwise).
QUIET = ("trainer.enable_progress_bar=false",)
TABLE_NAME = "breast_cancer"


def job_run(overrides: Sequence[str], run_dir: Path) -> tuple[float, dict[str, Any]]:
    """One ``supernet`` job in its own process, in `run_dir`: its wall seconds and its result.json
    (``{"error": <the last line of stderr>}`` when it failed)."""
    args = [*overrides, f"hydra.run.dir={run_dir}", *QUIET]
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "supernet", *args], capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        return wall, {"error": (proc.stderr.strip().splitlines() or ["?"])[-1]}
    return wall, json.loads((run_dir / "result.json").read_text())


def phase_figures(wall_s: float, result: Mapping[str, Any]) -> dict[str, Any]:
    """Each phase's wall seconds and its share of the job's `wall_s`; ``other`` is the rest."""
    phases = {name: float(p.get("wall_s") or 0.0) for name, p in (result.get("phases") or {}).items()}
    share = {name: round(s / wall_s, 3) for name, s in phases.items()}
    share["other"] = round(max(0.0, wall_s - sum(phases.values())) / wall_s, 3)
    return {"wall_s": round(wall_s, 2), "phases_s": phases, "phase_share": share}


def retrain_batch_size(run_dir: Path) -> int:
    """The batch the job retrained its winner at: ``retrain.batch_size``, else the data config's."""
    request = json.loads((run_dir / "pipeline_request.json").read_text())
    return int(request["retrain"].get("batch_size") or request["data"]["batch_size"])


def plain_net(subnet: Subnet) -> nn.Sequential:
    """The export's layers as ``Linear, ReLU, ..., Linear`` (what its retraining trains, on
    normalised inputs), sharing its weights."""
    layers: list[nn.Module] = []
    for layer in subnet.layers:
        layers += [layer, nn.ReLU()]
    return nn.Sequential(*layers[:-1])


def winner_epoch_s(run_dir: Path, bundle: DataBundle, epochs: int, seed: int) -> tuple[int, float]:
    """The retraining's batch size and the wall seconds of one plain training epoch of the job's
    exported winner at it (the fastest of `epochs`), on this process's CPU or GPU."""
    batch = retrain_batch_size(run_dir)
    model = plain_net(load_subnet(run_dir / "subnet"))
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    datamodule = TensorDataModule(bundle, batch, 10_000, seed=seed)
    return batch, time_epoch(PlainModule(model), datamodule, epochs, device)


def one_run(cfg: DictConfig, overrides: list[str], bundle: DataBundle, run_dir: Path) -> dict[str, Any]:
    """One job and its winner's epoch: the record of ``runs``."""
    wall, result = job_run(overrides, run_dir)
    if "error" in result:
        return result
    winner = result.get("winner") or {}
    batch, epoch_s = winner_epoch_s(run_dir, bundle, int(cfg.epochs), int(cfg.seed))
    return {
        **phase_figures(wall, result),
        "winner": winner.get("arch"),
        "params": winner.get("params"),
        "val_acc": winner.get("val_acc_retrained"),
        "test_acc": winner.get("test_acc"),
        "batch_size": batch,
        "winner_epoch_s": round(epoch_s, 3),
        "job_over_winner_epoch": round(wall / epoch_s, 1),
    }


def medians(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The medians over the runs that finished (none: an empty dict)."""
    done = [r for r in runs if "error" not in r]
    if not done:
        return {}

    def median(key: str) -> float:
        return round(statistics.median(float(r[key]) for r in done), 3)

    phases = sorted({name for r in done for name in r["phase_share"]})
    return {
        "job_s": median("wall_s"),
        "winner_epoch_s": median("winner_epoch_s"),
        "job_over_winner_epoch": round(statistics.median(r["job_over_winner_epoch"] for r in done), 1),
        "test_acc": median("test_acc"),
        "phase_share": {
            name: round(statistics.median(r["phase_share"].get(name, 0.0) for r in done), 3) for name in phases
        },
    }


def table_job(cfg: DictConfig, out_dir: Path) -> dict[str, Any]:
    """``supernet data=csv`` on scikit-learn's breast cancer table written as CSV: its phases' shares."""
    from sklearn.datasets import load_breast_cancer

    out_dir.mkdir(parents=True, exist_ok=True)
    frame = load_breast_cancer(as_frame=True).frame
    path = out_dir / f"{TABLE_NAME}.csv"
    frame.to_csv(path, index=False)
    overrides = ["data=csv", f"data.path={path}", "data.target=target", f"seed={cfg.seed}"]
    overrides += [str(o) for o in cfg.job.table_overrides]
    wall, result = job_run(overrides, out_dir / "job")
    if "error" in result:
        return result
    return {
        "data": result.get("data"),
        "rows": len(frame),
        **phase_figures(wall, result),
        "test_acc": (result.get("winner") or {}).get("test_acc"),
    }


def _repeats(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise UsageError(f"job.repeats={value!r} must be a whole number of runs >= 1")
    return value


def run_job_suite(cfg: DictConfig, out_dir: Path) -> dict[str, Any]:
    """`job.repeats` runs of the job on the bench's data (digits with quick=true), the table job,
    job.json in `out_dir`; prints the headline figures."""
    repeats = _repeats(cfg.job.repeats)
    data_cfg = to_plain(OmegaConf.load(CONF_DIR / "data" / "digits.yaml") if cfg.quick else cfg.data)
    bundle = load_data(data_cfg)
    overrides = [f"data={data_cfg['name']}", f"seed={cfg.seed}", *(str(o) for o in cfg.job.overrides)]
    runs = [one_run(cfg, overrides, bundle, out_dir / f"run{i}") for i in range(repeats)]
    figures: dict[str, Any] = {
        "device": torch.cuda.get_device_name() if torch.cuda.is_available() else f"cpu ({platform.machine()})",
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "data": bundle.summary(),
        "runs": runs,
        **medians(runs),
    }
    if cfg.job.table:
        figures["table"] = table_job(cfg, out_dir / "table")
    write_json(out_dir / "job.json", figures)
    print(format_job(figures))
    return {"task": "bench", "suite": "job", "status": "ok", **figures, "paths": {"job": str(out_dir / "job.json")}}


def format_job(figures: Mapping[str, Any]) -> str:
    """One line a run, the medians, the table job's shares."""
    lines = [f"{figures['data']} ({figures['device']}, {figures['threads']} threads)"]
    for i, r in enumerate(figures["runs"]):
        if "error" in r:
            lines.append(f"run {i}: failed: {r['error']}")
            continue
        lines.append(
            f"run {i}: {r['wall_s']} s = {r['job_over_winner_epoch']} epochs of {r['winner']} "
            f"({r['winner_epoch_s']} s at batch {r['batch_size']}), test {r['test_acc']}, phases {r['phases_s']}"
        )
    if "job_over_winner_epoch" in figures:
        lines.append(
            f"median: job_over_winner_epoch {figures['job_over_winner_epoch']}, job {figures['job_s']} s, "
            f"test {figures['test_acc']}, shares {figures['phase_share']}"
        )
    table = figures.get("table")
    if table is not None:
        detail = table.get("error") or f"{table['wall_s']} s, shares {table['phase_share']}"
        lines.append(f"table job ({TABLE_NAME}, {table.get('rows', '?')} rows): {detail}")
    return "\n".join(lines)
