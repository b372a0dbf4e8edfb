"""A command's config composed in-process with Hydra's compose API, also from inside a running
Hydra app (``supernet-bench suite=tabular`` runs pipelines that way; so do the scikit-learn
estimators): the outer app's global state is set aside and put back."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from supernet.errors import UsageError
from supernet.files import CONF_DIR

_COMPOSE = threading.Lock()  # Hydra's global state: one compose at a time (GridSearchCV's threads)


def compose_config(config_name: str, overrides: Sequence[str]) -> Any:
    """``conf/<config_name>.yaml`` with `overrides` as on the command line; Hydra's own errors
    (an unknown key or group) become one-line UsageErrors."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from supernet.commands.overrides import check_keys

    check_keys(overrides, CONF_DIR)  # a mistyped key named with the closest real one
    with _COMPOSE:
        outer = GlobalHydra.instance()
        running = outer.hydra if outer.is_initialized() else None  # called inside a Hydra app
        if running is not None:
            outer.clear()
        try:
            with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
                return compose(config_name=config_name, overrides=list(overrides))
        except Exception as exc:
            raise UsageError(f"overrides: {str(exc).strip().splitlines()[0]}") from exc
        finally:
            if running is not None:
                GlobalHydra.instance().initialize(running)
