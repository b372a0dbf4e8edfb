"""The pipeline's ``retrain.*`` as frozen objects, checked once where they are built.

`RetrainSettings` is the retraining recipe (the optimiser and the keys of
conf/blocks/retrain.yaml), ``retrain.init``, ``retrain.max_epochs``, ``retrain.compare`` and the
ensemble (`EnsembleSettings`: ``retrain.ensemble``, ``retrain.ensemble_from``); `request` turns
it into the `RetrainRequest` of one retraining (checked here, once: the request is not checked
again). ``auto`` (init, ensemble, ensemble_from, dropout, label_smoothing) is accepted here and
resolved once the data is read (`supernet.commands.pipeline_settings.resolved_settings`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from supernet.data.table_recipe import AUTO
from supernet.errors import UsageError
from supernet.files import conf_node, to_plain
from supernet.train.ensemble import check_ensemble_config
from supernet.train.retrain import INITS, RetrainRequest, check_recipe


def recipe_keys(retrain: Mapping[str, Any]) -> dict[str, Any]:
    """The retraining recipe out of ``retrain.*``: the optimiser and the keys of the shared recipe
    block (conf/blocks/retrain.yaml), not the pipeline's own (init, max_epochs, ensemble...)."""
    r = to_plain(retrain)
    return {k: r[k] for k in ("optim", *conf_node("blocks/retrain"))}


@dataclass(frozen=True)
class EnsembleSettings:
    """``retrain.ensemble`` (K, or ``auto`` until the data is read) and ``retrain.ensemble_from``."""

    k: int | str
    source: str

    @classmethod
    def build(cls, k: Any, source: Any, auto: bool = True) -> EnsembleSettings:
        check_ensemble_config(k, source, auto=auto)
        return cls(k if k == AUTO else int(k), str(source))

    @property
    def size(self) -> int:
        """K (an unresolved ``auto`` counts as the winner alone)."""
        return self.k if isinstance(self.k, int) else 1


@dataclass(frozen=True)
class RetrainSettings:
    """The retraining recipe and what the pipeline adds to it, checked (see the module docstring)."""

    recipe: Mapping[str, Any]
    init: str
    max_epochs: int
    compare: bool
    ensemble: EnsembleSettings

    @classmethod
    def build(cls, retrain: Mapping[str, Any]) -> RetrainSettings:
        """``retrain.*`` checked with the pipeline's messages (its optimiser is ``retrain.optim``)."""
        recipe = recipe_keys(retrain)
        check_recipe(recipe, optim_key="retrain.optim")
        if int(retrain["max_epochs"]) < 1:
            raise UsageError(f"retrain.max_epochs={retrain['max_epochs']} must be >= 1")
        if retrain["init"] not in (*INITS, AUTO):
            raise UsageError(f"retrain.init={retrain['init']!r} must be inherited, scratch or auto")
        return cls(
            recipe=MappingProxyType(recipe),
            init=str(retrain["init"]),
            max_epochs=int(retrain["max_epochs"]),
            compare=bool(retrain.get("compare", False)),
            ensemble=EnsembleSettings.build(retrain.get("ensemble", 1), retrain.get("ensemble_from", "top")),
        )

    def request(
        self, subnet_dir: Path, out_dir: Path, trainer: Mapping[str, Any], seed: int, tensorboard: bool
    ) -> RetrainRequest:
        """One retraining of the export in `subnet_dir` with this recipe (`trainer`: conf/trainer,
        checked, its epochs this recipe's). The recipe and trainer were checked where the settings
        were built (once a run): the request is `verified`, its members' too."""
        return RetrainRequest(
            Path(subnet_dir),
            to_plain(self.recipe),
            None,
            {**to_plain(trainer), "max_epochs": self.max_epochs},
            Path(out_dir),
            init=self.init,
            seed=int(seed),
            compare=self.compare,
            tensorboard=tensorboard,
            verified=True,
        )
