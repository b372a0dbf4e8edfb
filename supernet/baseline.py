"""A plain baseline to put a searched subnet's accuracy in context.

scikit-learn's `MLPClassifier` (one hidden layer of 100 units by default) trained on exactly the
split and normalisation the supernet sees (`supernet.data.datasets.load_data`), scored on the validation
and test splits:

    python -m supernet.baseline data=tabular_demo
    python -m supernet.baseline data=csv data.path=measurements.csv data.target=label
    python -m supernet.baseline data=tabular_demo data.dataset=wine hidden=[64,32] seed=1
"""

from __future__ import annotations

import sys
import time
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from supernet.data.datasets import load_data

CONF_DATA = Path(__file__).resolve().parent.parent / "conf" / "data"


def sklearn_mlp_baseline(
    cfg: Mapping,
    hidden: Sequence[int] = (100,),
    max_iter: int = 300,
    seed: int = 0,
) -> dict[str, Any]:
    """Fit `MLPClassifier` on the normalised train split of data config `cfg`; report accuracies.

    Returns ``{"model", "hidden", "params", "converged", "fit_s", "val_acc", "test_acc"}``
    (``test_acc`` is None when the data set has no test split).
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    bundle = load_data(cfg)
    clf = MLPClassifier(
        hidden_layer_sizes=tuple(int(h) for h in hidden), max_iter=int(max_iter), random_state=int(seed)
    )
    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        clf.fit(bundle.train_x.numpy(), bundle.train_y.numpy())
    fit_s = time.perf_counter() - t0

    def accuracy(x: Any, y: Any) -> float | None:
        if x is None:
            return None
        return float(np.mean(clf.predict(x.numpy()) == y.numpy()))

    params = sum(w.size for w in clf.coefs_) + sum(b.size for b in clf.intercepts_)
    return {
        "model": f"sklearn MLPClassifier(hidden_layer_sizes={tuple(clf.hidden_layer_sizes)})",
        "hidden": [int(h) for h in clf.hidden_layer_sizes],
        "params": int(params),
        "converged": not any(issubclass(w.category, ConvergenceWarning) for w in caught),
        "fit_s": round(fit_s, 3),
        "val_acc": accuracy(bundle.val_x, bundle.val_y),
        "test_acc": accuracy(bundle.test_x, bundle.test_y),
    }


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """``data=<name>`` picks conf/data/<name>.yaml; ``data.key=value`` overrides it; ``hidden``,
    ``max_iter`` and ``seed`` go to `sklearn_mlp_baseline`. Prints and returns the result."""
    import logging

    import yaml
    from omegaconf import OmegaConf

    from supernet.errors import UsageError

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    args = list(sys.argv[1:] if argv is None else argv)
    name = next((a.split("=", 1)[1] for a in args if a.startswith("data=")), "tabular_demo")
    file = CONF_DATA / f"{name}.yaml"
    if not file.exists():
        raise UsageError(f"data={name}: no {file}")
    cfg = OmegaConf.load(file)
    cfg.merge_with_dotlist([a[len("data.") :] for a in args if a.startswith("data.")])
    other = OmegaConf.from_dotlist([a for a in args if not a.startswith("data")])
    result = sklearn_mlp_baseline(cfg, **OmegaConf.to_container(other))
    print(yaml.safe_dump(result, sort_keys=False).strip())
    return result


if __name__ == "__main__":
    from supernet.errors import UsageError

    try:
        main()
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)  # one line and exit code 2, as the CLI does
        sys.exit(2)
