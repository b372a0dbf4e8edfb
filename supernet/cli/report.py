"""``supernet-report DIR``: table + plots across the jobs of a sweep (see supernet/report.py)."""

from ..report import main

if __name__ == "__main__":
    main()
