"""Training: the supernet (`fit`), retraining an export (`retrain`), ensembles, folds, callbacks.

Importing it drops one Lightning log line: 2.6 suggests installing a cloud logger each time a
``Trainer`` is built, and one run of the job builds up to a dozen of them (every ensemble member
retrains with its own).
"""

import logging


class _NoLoggerAdvert(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "litlogger" not in str(record.msg)


logging.getLogger("pytorch_lightning.utilities.rank_zero").addFilter(_NoLoggerAdvert())
