"""``supernet-train``: train the supernet once (see conf/train.yaml for every knob).

supernet-train
supernet-train data=fashion_mnist sampler=sandwich trainer.max_epochs=30 seed=1
supernet-train ckpt_path=outputs/train/runs/<stamp>     # resume a killed run
"""

from pathlib import Path

from omegaconf import DictConfig

from supernet import signals
from supernet.config import check_train_config
from supernet.io.checkpoint import resume_target


def run(cfg: DictConfig, out_dir: Path) -> dict:
    # Config and checkpoint mistakes are reported before Lightning is even imported: a typo costs
    # a second. The checkpoint is read here once and the answer handed on.
    check_train_config(cfg)
    resume = resume_target(cfg.get("ckpt_path"), cfg.get("model"))
    from supernet.train.fit import train_supernet

    run_dir = resume[1] or out_dir
    with signals.advice(f"continue with supernet-train ckpt_path={run_dir}"):
        return train_supernet(cfg, out_dir, resume=resume)
