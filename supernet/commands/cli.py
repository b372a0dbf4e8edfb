"""The console scripts, one line each: a command's config and its job, imported only when it runs.

``supernet-score --help`` composes the config and prints it without importing torch or Lightning;
the job module (and what it needs) is imported once Hydra hands over the config.
"""

from __future__ import annotations

import sys

from supernet.commands.common import entry_point

pipeline = entry_point("pipeline", "supernet.commands.pipeline:run")
train = entry_point("train", "supernet.commands.train:run")
search = entry_point("search", "supernet.commands.search:run")
score = entry_point("score", "supernet.commands.score:run")
export = entry_point("export", "supernet.commands.export:run")
retrain = entry_point("retrain", "supernet.commands.retrain:run")
rank = entry_point("rank", "supernet.commands.rank:run")
bench = entry_point("bench", "supernet.commands.bench:run_bench")
COMMANDS = {
    "pipeline": pipeline,
    "train": train,
    "search": search,
    "score": score,
    "export": export,
    "retrain": retrain,
    "rank": rank,
    "bench": bench,
}


def report() -> None:
    from supernet.commands.report import main

    main()


def dispatch() -> None:
    """``python -m supernet.commands <name> [overrides]``, where the console scripts are not on PATH."""
    if len(sys.argv) < 2 or sys.argv[1] not in [*COMMANDS, "report"]:
        print(f"usage: python -m supernet.commands {{{','.join([*COMMANDS, 'report'])}}} [overrides]", file=sys.stderr)
        sys.exit(2)
    name = sys.argv.pop(1)
    sys.argv[0] = f"supernet-{name}"
    (report if name == "report" else COMMANDS[name])()
