"""``supernet-report`` over a sweep of rank jobs (supernet/fidelity/report.py), end to end.

.venv/bin/python -m pytest tests/test_report.py -q
"""

from __future__ import annotations

import csv

import pytest

from supernet.fidelity.fmt import signed

from conftest import read_json, run_cli


@pytest.mark.slow
def test_report_of_a_rank_sweep_groups_supernets_by_their_training_config(tmp_path):
    """Two supernets per training config, ranked by a rank sweep: supernet-report groups the rank
    jobs by the config of the run that trained each supernet, its seed being the replicate."""
    trained = tmp_path / "train"
    proc = run_cli(
        "supernet-train",
        "-m",
        "trainer.max_epochs=1",
        "sampler=uniform,sandwich",
        "seed=0,1",
        "logger=none",
        "trainer.enable_progress_bar=false",
        f"hydra.sweep.dir={trained}",
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    ckpts = ",".join(str(trained / str(i)) for i in range(4))
    sweep = tmp_path / "rank"
    args = ["rank.n=8", "rank.epochs=1", "rank.seeds=1", f"rank.cache={tmp_path / 'cache.json'}", "logger=none"]
    proc = run_cli("supernet-rank", "-m", f"ckpt_path={ckpts}", *args, f"hydra.sweep.dir={sweep}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    taus = {i: read_json(sweep / str(i) / "result.json")["objective"] for i in range(4)}

    report = run_cli("supernet-report", str(sweep))
    assert report.returncode == 0, report.stderr
    text = (sweep / "report.md").read_text()
    assert "## Ranking fidelity per configuration" in text
    groups = {line.split(" | ")[0].strip("| "): line for line in text.splitlines() if line.startswith("| sampler=")}
    assert set(groups) == {"sampler=uniform", "sampler=sandwich"}
    assert all(" | 2 | " in line for line in groups.values())  # both seeds of each config
    with open(sweep / "report.csv") as f:
        rows = [r for r in csv.DictReader(f) if r["job"] in {"0", "1", "2", "3"}]
    assert {r["seed"] for r in rows} == {"0", "1"}
    assert {int(r["job"]): float(r["tau"]) for r in rows} == pytest.approx(taus)
    # Each job's difference to size, with the interval its rank.json holds (8 archs: just enough).
    gaps = {i: read_json(sweep / str(i) / "rank.json")["all"] for i in range(4)}
    for r in rows:
        gap = gaps[int(r["job"])]
        assert float(r["size_gap"]) == pytest.approx(gap["params_gap"])
        if gap["params_gap_ci"] is None:  # a resample of 8 archs whose targets all tie: no interval
            assert r["size_gap_low"] == r["size_gap_high"] == ""
            continue
        assert [float(r["size_gap_low"]), float(r["size_gap_high"])] == pytest.approx(gap["params_gap_ci"])
        assert f"{signed(gap['params_gap'], 3)} [{signed(gap['params_gap_ci'][0], 3)}, " in text
    assert (sweep / "report.png").stat().st_size > 1000
    assert not (sweep / "pooled.json").exists()  # one sample per supernet: nothing to pool
    assert "## Pooled over samples" not in text
