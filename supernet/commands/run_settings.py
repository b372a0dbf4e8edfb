"""`RunSettings`: one ``supernet`` run's settings, typed and frozen, built once where the command
starts (`supernet.commands.pipeline_settings.check_pipeline_config` checks and builds them).

Its sections: the space (`supernet.config.SpaceSettings`), the supernet's training
(`supernet.config.TrainingSettings`; None when ``ckpt_path`` hands over a trained supernet), the
trainer (conf/trainer, checked once for the training and every retraining), the search
(`supernet.search.SearchSettings`: the shared settings and the strategy's own), the retraining
recipe with the ensemble (`supernet.train.recipe_settings.RetrainSettings`) and the
export (`ExportSettings`). Before the data is read an ``auto`` stays ``auto`` (the search is
checked against the placeholder space); `pipeline_settings.resolved_settings` returns the
settings with each ``auto`` resolved for the data (the retraining recipe's too), ``autos`` says
what each became and why (the loader's ``data.*`` ones included) and ``resolved`` is the one
line the run logs. The phases read these objects; a phase hook
(`supernet.commands.pipeline.PhaseHooks`) returns a changed copy (`dataclasses.replace`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from supernet.config import SpaceSettings, TrainingSettings
from supernet.data.table_recipe import Auto
from supernet.search.settings import SearchSettings
from supernet.train.recipe_settings import RetrainSettings


@dataclass(frozen=True)
class ExportSettings:
    """``export.*``: the ONNX copy, and how many validation rows check the export's outputs."""

    onnx: bool
    verify_samples: int

    @classmethod
    def build(cls, node: Any) -> ExportSettings:
        return cls(onnx=bool(node.get("onnx", True)), verify_samples=int(node.get("verify_samples", 512)))


@dataclass(frozen=True)
class RunSettings:
    """Every section one ``supernet`` run reads, checked (see the module docstring)."""

    seed: int
    ckpt_path: str | None
    space: SpaceSettings
    training: TrainingSettings | None
    # conf/trainer, checked once: the supernet's and the retraining's (a hook may cap its time)
    trainer: Mapping[str, Any]
    search: SearchSettings
    retrain: RetrainSettings
    export: ExportSettings
    tensorboard: bool
    autos: tuple[Auto, ...] = ()  # what each auto became, once the data is read (the loader's, then the run's)
    resolved: str | None = None  # the one line that says so (None: no auto)
