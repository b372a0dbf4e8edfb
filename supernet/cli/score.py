"""``supernet-score``: inherited-weight accuracy of archs from a JSON file -> scores.json.

supernet-score ckpt_path=last archs_file=my_archs.json split=test
"""

from ..jobs import score
from .common import entry_point

main = entry_point("score", score.run)

if __name__ == "__main__":
    main()
