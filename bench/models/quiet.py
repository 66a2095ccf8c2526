"""The converters' chatter (prints, progress bars, transformers' warnings) into a build log."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Iterator


@contextlib.contextmanager
def quiet_log(log: Path) -> Iterator[None]:
    """The builder's prints, progress bars and the converters' warnings go to a log file;
    edgebench's own lines stay readable, and the log is there when something fails."""
    import logging

    loggers = [logging.getLogger(), logging.getLogger("transformers")]
    saved = [(h, h.level) for lg in loggers for h in lg.handlers]
    with open(log, "w") as fh, contextlib.redirect_stdout(fh), contextlib.redirect_stderr(fh):
        handler = logging.StreamHandler(fh)
        for h, _ in saved:
            h.setLevel(logging.CRITICAL)
        loggers[0].addHandler(handler)
        try:
            yield
        finally:
            loggers[0].removeHandler(handler)
            for h, level in saved:
                h.setLevel(level)
