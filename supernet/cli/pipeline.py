"""``supernet`` (also ``python -m supernet``): train -> search -> export -> retrain in one run.

supernet
supernet data=fashion_mnist search.constraints.max_params=100000
supernet -m seed=0,1,2 sampler=uniform,sandwich
"""

from ..jobs import pipeline
from .common import entry_point

main = entry_point("pipeline", pipeline.run)

if __name__ == "__main__":
    main()
