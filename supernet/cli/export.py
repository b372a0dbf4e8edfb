"""``supernet-export``: one subnet as a verified compact model (see conf/export.yaml).

supernet-export ckpt_path=outputs/train/runs/<stamp> arch=[256,128] out=subnets/a
supernet-export search_dir=outputs/search/runs/<stamp> out=subnets/best
"""

from ..jobs import export
from .common import entry_point

main = entry_point("export", export.run)

if __name__ == "__main__":
    main()
