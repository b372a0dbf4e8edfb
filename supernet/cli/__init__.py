"""Console scripts: one small Hydra entry point per command (see pyproject.toml)."""
