"""``supernet-train``: train the supernet once (see conf/train.yaml for every knob).

supernet-train
supernet-train data=fashion_mnist sampler=sandwich trainer.max_epochs=30 seed=1
supernet-train ckpt_path=outputs/train/runs/<stamp>     # resume a killed run
"""

from ..jobs import train
from .common import entry_point

main = entry_point("train", train.run)

if __name__ == "__main__":
    main()
