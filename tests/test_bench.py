"""`supernet-bench` measures for real (no timings asserted: only that every figure is there and consistent)."""

import pytest

from conftest import read_json, run_cli


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
    bench = read_json(tmp_path / "bench.json")
    for key in (
        "supernet_epoch_over_plain",
        "sandwich_epoch_over_uniform",
        "ema_epoch_over_sandwich",
        "norm_epoch_over_ema",
        "norm_scoring_over_plain",
        "step_overhead_over_plain",
        "sandwich_ops_per_step_fp32",
        "bf16_ops_over_fp32",
        "evals_per_s_batched",
        "evals_per_s_naive",
        "peak_rss_mb",
    ):
        assert bench[key] > 0, key
    assert bench["device"].startswith("cpu")
    assert bench["n_archs"] >= 20 and bench["val_samples"] > 0
    assert bench["supernet_epoch_over_plain"] == pytest.approx(
        bench["uniform_epoch_s"] / bench["plain_epoch_s"], rel=1e-2
    )
    assert bench["batched_over_naive"] == pytest.approx(
        bench["evals_per_s_batched"] / bench["evals_per_s_naive"], rel=1e-2
    )
    assert bench["norm_epoch_over_ema"] == pytest.approx(
        bench["sandwich_ema_norm_epoch_s"] / bench["sandwich_ema_epoch_s"], rel=1e-2
    )
    assert "bf16_epoch_over_fp32" not in bench  # timed only on a GPU with bf16
    # The printed table is what a user reads.
    assert "supernet_epoch_over_plain" in proc.stdout and "evals_per_s_batched" in proc.stdout
