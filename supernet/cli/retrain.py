"""``supernet-retrain``: fine-tune or retrain an exported subnet (see conf/retrain.yaml).

supernet-retrain subnet=subnets/best init=inherited trainer.max_epochs=20
supernet-retrain subnet=subnets/best init=scratch
supernet-retrain subnet=subnets/best compare=true
"""

from ..jobs import retrain
from .common import entry_point

main = entry_point("retrain", retrain.run)

if __name__ == "__main__":
    main()
