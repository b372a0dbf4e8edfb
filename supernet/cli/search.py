"""``supernet-search``: search sub-architectures of a trained supernet (conf/search.yaml).

supernet-search ckpt_path=outputs/train/runs/<stamp> search.constraints.max_params=100000
supernet-search ckpt_path=last search=random search.budget=2000
supernet-search resume=true
"""

from ..jobs import search
from .common import entry_point

main = entry_point("search", search.run)

if __name__ == "__main__":
    main()
