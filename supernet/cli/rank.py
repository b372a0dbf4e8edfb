"""``supernet-rank``: how well the supernet ranks archs compared with training them alone (conf/rank.yaml).

supernet-rank ckpt_path=last
supernet-rank ckpt_path=outputs/train/runs/<stamp> rank.n=50 rank.epochs=10 rank.seeds=2
supernet-rank ckpt_path=last rank.cache=null          # train everything again, keep nothing
"""

from ..jobs import rank
from .common import entry_point

main = entry_point("rank", rank.run)

if __name__ == "__main__":
    main()
