"""``supernet-train``: train the supernet once (see conf/train.yaml for every knob).

supernet-train
supernet-train data=fashion_mnist sampler=sandwich trainer.max_epochs=30 seed=1
supernet-train ckpt_path=outputs/train/runs/<stamp>     # resume a killed run
"""

from pathlib import Path

from omegaconf import DictConfig

from ..checkpoint import read_checkpoint, resolve_checkpoint
from ..config import check_train_config
from .common import entry_point


def job(cfg: DictConfig, out_dir: Path) -> dict:
    # Config mistakes are reported before Lightning is even imported: a typo costs a second.
    check_train_config(cfg)
    if cfg.get("ckpt_path"):
        read_checkpoint(resolve_checkpoint(cfg.ckpt_path))
    from ..jobs import train

    return train.run(cfg, out_dir)


main = entry_point("train", job)

if __name__ == "__main__":
    main()
