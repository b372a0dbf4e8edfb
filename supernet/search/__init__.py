"""Architecture search over a trained supernet: strategies (evolution, random, bayes, rl) behind
one ask/tell interface, the shared driver loop, and Pareto utilities. Plain Python/PyTorch: no
Lightning import here (a search only needs an evaluator that scores archs).

    from supernet.search import SearchHooks, run_search, validate_search_config
    cfg = validate_search_config(cfg.search, space)
    result = run_search(space, evaluator, cfg, out_dir, seed=0, resume=False, hooks=SearchHooks(writer=writer))

The score is ``search.metric`` (the evaluator's ``metric``: accuracy, its record field ``val_acc``,
unless told otherwise), taken in its direction; ``val_acc`` in ``search.objectives`` stands for it.

Strategies: `search=evolution` (default; NSGA-II with several objectives), `search=random`,
`search=bayes` (Optuna), `search=rl` (REINFORCE controller); configs in conf/search/.
Tests: ``.venv/bin/python -m pytest tests/test_search.py tests/test_pareto.py -q``.
"""

from supernet.search.base import Constraints, Strategy, propose, repair, score_objectives
from supernet.search.report import choose_best, pareto_figure, pareto_set
from supernet.search.runner import (
    STRATEGIES,
    Evaluator,
    SearchHooks,
    make_strategy,
    needs_latency,
    run_search,
    validate_search_config,
)
from supernet.search.settings import SearchSettings

__all__ = [
    "STRATEGIES",
    "Constraints",
    "Evaluator",
    "SearchHooks",
    "SearchSettings",
    "Strategy",
    "choose_best",
    "make_strategy",
    "needs_latency",
    "pareto_figure",
    "pareto_set",
    "propose",
    "repair",
    "run_search",
    "score_objectives",
    "validate_search_config",
]
