"""One function per phase (``run(cfg, out_dir) -> dict``), shared by the commands and the pipeline."""
