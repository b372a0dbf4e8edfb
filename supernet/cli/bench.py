"""``supernet-bench``: speed ratios on this device (see supernet/bench.py).

supernet-bench quick=true
"""

from ..bench import run_bench
from .common import entry_point

main = entry_point("bench", run_bench)

if __name__ == "__main__":
    main()
