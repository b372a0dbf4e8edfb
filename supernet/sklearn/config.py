"""The estimators' parameters as the pipeline's composed config: ``conf/`` stays the one source of
defaults.

`fit_config` composes ``conf/pipeline.yaml`` with Hydra's compose API, with ``data=sklearn``
(``conf/data/sklearn.yaml``) and one override per parameter that is not None; a None parameter
keeps the config's value. Routed parameters (`routed_overrides`: ``search__population=64`` is
``search.population=64``, as skorch routes ``optimizer__lr``) come next, and ``overrides`` (any
key of ``conf/pipeline.yaml``, as on the command line, checked as the command line checks them)
last: they win. The parameters' types and ranges are checked once, by scikit-learn's
``_parameter_constraints`` (`PARAMETER_CONSTRAINTS`). A UsageError raised later names config
keys; `in_param_terms` rewrites the keys behind a parameter into the parameter's name.
"""

from __future__ import annotations

import copy
import difflib
import functools
import math
import numbers
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sklearn.utils._param_validation import Interval, StrOptions

STRATEGIES = ("evolution", "random", "bayes", "rl")
DEVICES = {"auto": "auto", "cpu": "cpu", "cuda": "gpu"}  # device -> trainer.accelerator
INITS = ("inherited", "scratch")
NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")  # a metric or objective name, safe in an override

# The config key behind each parameter, for messages in the parameters' terms.
PARAM_KEYS = {
    "search.constraints.max_params": "max_params",
    "search.constraints.max_flops": "max_flops",
    "search.objectives": "objectives",
    "search.metric": "metric",
    "search.strategy": "strategy",
    "search.budget": "budget",
    "trainer.max_epochs": "supernet_epochs",
    "retrain.max_epochs": "retrain_epochs",
    "retrain.init": "retrain_init",
    "data.batch_size": "batch_size",
}
_KEYS = re.compile("|".join(re.escape(k) for k in sorted(PARAM_KEYS, key=len, reverse=True)) + r"(?==)")


def in_param_terms(message: str) -> str:
    """``search.constraints.max_params=100 is below ...`` -> ``max_params=100 is below ...``."""
    return _KEYS.sub(lambda m: PARAM_KEYS[m.group(0)], message)


# ---------------------------------------------------------------------------- parameter checks
_COUNT = [Interval(numbers.Integral, 1, None, closed="left"), None]
PARAMETER_CONSTRAINTS: dict[str, list[Any]] = {
    "max_params": _COUNT,
    "max_flops": _COUNT,
    "objectives": [str, list, tuple, None],
    "metric": [str, None],
    "strategy": [StrOptions(set(STRATEGIES)), None],
    "budget": _COUNT,
    "supernet_epochs": _COUNT,
    "retrain_epochs": _COUNT,
    "retrain_init": [StrOptions(set(INITS)), None],
    "space": [StrOptions({"auto"}), dict, None],
    "batch_size": _COUNT,
    "time_limit_s": [Interval(numbers.Real, 0, None, closed="neither"), None],
    "random_state": ["random_state"],
    "device": [StrOptions(set(DEVICES)), None],
    "n_jobs": [numbers.Integral, None],
    "class_weight": [StrOptions({"balanced"}), dict, None],
    "verbose": ["verbose"],
    "output_dir": [str, os.PathLike, None],
    "overrides": [list, tuple, dict, None],
}


def _count(name: str, value: Any, least: int = 1) -> int:
    """A whole number >= `least` (ints, integral floats such as 2e4), else a ValueError naming it."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and float(value).is_integer()
    if not ok or int(value) < least:
        raise ValueError(f"{name}={value!r} must be a whole number >= {least} or None")
    return int(value)


def _names(name: str, value: Any) -> list[str]:
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, Sequence) or not values or not all(isinstance(v, str) and NAME.match(v) for v in values):
        raise ValueError(f"{name}={value!r} must be a name or a list of names, e.g. ['val_acc', 'params']")
    return list(values)


def space_overrides(space: Any) -> list[str]:
    """``space="auto"`` (the data config's default space) or ``{"depth": (min, max), "width":
    (min, max) or (min, max, step)}``: overrides of ``space.*``."""
    if space == "auto" or space is None:
        return []
    shape = "space must be 'auto' or {'depth': (min, max), 'width': (min, max[, step])}"
    if not isinstance(space, Mapping) or not set(space) <= {"depth", "width"}:
        raise ValueError(f"{shape}, got {space!r}")
    out = []
    for group, keys in (("depth", ("min", "max")), ("width", ("min", "max", "step"))):
        if group not in space:
            continue
        values = space[group]
        if not isinstance(values, Sequence) or isinstance(values, str) or not 2 <= len(values) <= len(keys):
            raise ValueError(f"{shape}, got {group}={values!r}")
        out += [f"space.{group}.{k}={_count(f'space[{group!r}]', v)}" for k, v in zip(keys, values)]
    return out


def _seed(random_state: Any) -> int | None:
    """None: the config's seed; an int: itself; a RandomState: a seed drawn from it."""
    if random_state is None:
        return None
    if isinstance(random_state, numbers.Integral) and not isinstance(random_state, bool):
        return int(random_state)
    from sklearn.utils import check_random_state

    return int(check_random_state(random_state).randint(2**31 - 1))


def param_overrides(params: Mapping[str, Any], task: str) -> list[str]:
    """The Hydra overrides of the estimator's parameters (`fit_config`'s docstring)."""
    out = [
        "data=sklearn",
        f"data.task={task}",
        f"trainer.enable_progress_bar={str(int(params['verbose']) >= 2).lower()}",
    ]
    if params["strategy"] is not None:
        out.append(f"search={params['strategy']}")
    counts = {
        "max_params": "search.constraints.max_params",
        "max_flops": "search.constraints.max_flops",
        "supernet_epochs": "trainer.max_epochs",
        "retrain_epochs": "retrain.max_epochs",
        "batch_size": "data.batch_size",
    }
    out += [f"{key}={int(params[name])}" for name, key in counts.items() if params[name] is not None]
    if params["retrain_init"] is not None:
        out.append(f"retrain.init={params['retrain_init']}")
    if params["objectives"] is not None:
        out.append(f"search.objectives=[{','.join(_names('objectives', params['objectives']))}]")
    if params["metric"] is not None:
        if not isinstance(params["metric"], str):
            raise ValueError(f"metric={params['metric']!r} must be one metric's name, e.g. 'balanced_accuracy'")
        out.append(f"search.metric={_names('metric', params['metric'])[0]}")
    out += space_overrides(params["space"])
    seed = _seed(params["random_state"])
    if seed is not None:
        out += [f"seed={seed}", f"data.split_seed={seed}"]
    if params["device"] is not None:
        device = params["device"]
        _check_cuda(device)
        out += [f"device={device}", f"trainer.accelerator={DEVICES[device]}"]
    if params["output_dir"] is None:  # nothing outlives the fit: no TensorBoard, ONNX or figure
        out += ["logger=none", "export.onnx=false", "retrain.onnx=false", "figures=false"]
    return out


def _check_cuda(device: str) -> None:
    if device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise ValueError("device='cuda' but no CUDA device is visible; use device='cpu' or 'auto'")


def user_overrides(overrides: Any) -> list[str]:
    """``overrides``: a list of Hydra overrides, or a dict ``{key: value}``; checked as the command
    line checks them (a mistyped ``key=`` or ``+key=`` is refused with the closest key)."""
    from supernet.commands.overrides import check_appended_keys
    from supernet.files import CONF_DIR

    if overrides is None:
        return []
    if isinstance(overrides, Mapping):
        overrides = [f"{k}={hydra_value(v)}" for k, v in overrides.items()]
    if isinstance(overrides, str) or not all(isinstance(o, str) for o in overrides):
        raise ValueError(f"overrides={overrides!r} must be a list of Hydra overrides, e.g. ['sampler=uniform']")
    check_appended_keys(overrides, CONF_DIR)  # compose_config checks the other keys
    return list(overrides)


# ---------------------------------------------------------------------------- routed parameters
ROUTE = "__"
_PLAIN = re.compile(r"^[A-Za-z0-9_./-]+$")


def hydra_value(value: Any) -> str:
    """`value` as an override's right-hand side (``1e-3`` -> ``0.001``, ``"a b"`` -> ``'a b'``)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        return repr(float(value)) if math.isfinite(value) else str(float(value))
    if isinstance(value, Mapping):
        return "{" + ",".join(f"{k}:{hydra_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(hydra_value(v) for v in value) + "]"
    text = str(value)
    if _PLAIN.match(text) and text not in ("null", "true", "false"):
        return text
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def routed_key(name: str) -> str:
    return name.replace(ROUTE, ".")


def check_routed(routed: Mapping[str, Any], own: Iterable[str]) -> None:
    """Each routed name is a key of the configs with ``__`` for its dots; else a ValueError with
    the closest name (a routed one or one of the estimator's own parameters)."""
    from supernet.commands.overrides import known_keys
    from supernet.files import CONF_DIR

    keys = known_keys(CONF_DIR)
    for name in routed:
        if ROUTE in name and routed_key(name) in keys:
            continue
        raise ValueError(
            f"{name}: no such parameter{closest(name, own)}; a routed parameter is a key of "
            "conf/pipeline.yaml with __ for its dots, e.g. search__population=64"
        )


def closest(name: str, own: Iterable[str]) -> str:
    """`` (did you mean search__budget?)``: the closest routed name or parameter, or nothing."""
    from supernet.commands.overrides import known_keys
    from supernet.files import CONF_DIR

    names = sorted({k.replace(".", ROUTE) for k in known_keys(CONF_DIR)} | set(own))
    close = difflib.get_close_matches(name, names, n=1, cutoff=0.75)
    return f" (did you mean {close[0]}?)" if close else ""


def check_routed_types(routed: Mapping[str, Any], cfg: Any) -> None:
    """A routed value takes the type of the config's value: a number for a number (or "auto", or
    None), true/false for a flag; anything for a null or a text key."""
    from omegaconf import OmegaConf

    for name, value in routed.items():
        current = OmegaConf.select(cfg, routed_key(name), default=None, throw_on_missing=False)
        if isinstance(current, bool):
            ok, kind = isinstance(value, (bool, type(None))), "true or false"
        elif isinstance(current, numbers.Real):
            number = isinstance(value, numbers.Real) and not isinstance(value, bool)
            ok, kind = number or value is None or value == "auto", "a number"
        else:
            continue
        if not ok:
            raise ValueError(f"{name}={value!r} must be {kind}, as {routed_key(name)} is ({current!r})")


def routed_overrides(routed: Mapping[str, Any]) -> list[str]:
    return [f"{routed_key(name)}={hydra_value(value)}" for name, value in routed.items()]


# ---------------------------------------------------------------------------- composing
@functools.lru_cache(maxsize=32)
def _composed(overrides: tuple[str, ...]) -> Any:
    from supernet.commands.compose import compose_config

    return compose_config("pipeline", overrides)


def fit_config(params: Mapping[str, Any], task: str) -> Any:
    """The pipeline config one fit runs with (a fresh copy: the phases may change it): the
    parameters', the routed parameters' and then the user's overrides (module docstring)."""
    own = [k for k in params if k in PARAMETER_CONSTRAINTS]
    routed = {k: v for k, v in params.items() if k not in PARAMETER_CONSTRAINTS}
    check_routed(routed, own)
    first, last = param_overrides(params, task), user_overrides(params["overrides"])
    if routed:
        check_routed_types(routed, _composed(tuple(first + last)))
    cfg = copy.deepcopy(_composed(tuple(first + routed_overrides(routed) + last)))
    fit_budget(cfg, params["budget"])
    fit_class_weight(cfg, params["class_weight"], task)
    return cfg


def fit_class_weight(cfg: Any, class_weight: Any, task: str) -> None:
    """``class_weight`` as ``data.class_weight`` (labels as the class names the data holds: str)."""
    if class_weight is None:
        return
    if task == "regression":
        raise ValueError(f"class_weight={class_weight!r} applies to a classifier; SupernetRegressor takes None")
    if class_weight == "balanced":
        cfg.data.class_weight = "balanced"
    elif isinstance(class_weight, Mapping):
        cfg.data.class_weight = {str(k): v for k, v in class_weight.items()}
    else:
        raise ValueError(f"class_weight={class_weight!r} must be 'balanced', a dict {{label: weight}} or None")


def fit_budget(cfg: Any, budget: int | None) -> None:
    """``search.budget`` (`budget`, or the config's), capped at the number of archs in the space;
    a strategy's first batch larger than it (evolution's population, bayes' startup trials)
    shrinks to it, so a small budget is never refused."""
    from supernet.config import build_space

    if budget is None and cfg.search.budget == "auto":
        return  # the table recipe's, resolved on the fit's rows (`fitting.resolved_recipe`), then capped
    size = build_space(cfg.space, cfg.data).size()
    n = min(int(budget if budget is not None else cfg.search.budget), size)
    cfg.search.budget = n
    search = cfg.search
    if search.strategy == "evolution" and int(search.population) > n:
        search.population = max(n, 2)
        search.tournament = min(int(search.tournament), search.population)
        search.parents = min(int(search.parents), search.population)
    if search.strategy == "bayes" and int(search.startup_trials) > n:
        search.startup_trials = n
