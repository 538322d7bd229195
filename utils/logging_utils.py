"""Logging set up once per run (console + log file), and progress that suits a terminal or a log pane."""
import logging
import sys
import time
from pathlib import Path

from tqdm import tqdm

LOG_FORMAT = "%(asctime)s %(levelname)s %(message)s"


def setup_logging(log_file=None, level=logging.INFO) -> logging.Logger:
    """Root logger to stderr and, when given, to log_file (replacing handlers of an earlier run in-process)."""
    root = logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, "_behaviorscope", False)]:  # ours, from an earlier run
        root.removeHandler(handler)
        handler.close()
    root.setLevel(level)
    console = logging.StreamHandler(sys.stderr)
    console.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    handlers = [console]
    if log_file is not None:
        try:
            handlers.append(logging.FileHandler(log_file, mode="a", encoding="utf-8"))
        except OSError as exc:
            from utils.io import disk_error
            raise disk_error(Path(log_file).parent, exc) from None
        handlers[-1].setFormatter(logging.Formatter(LOG_FORMAT))
    for handler in handlers:
        handler._behaviorscope = True
        root.addHandler(handler)
    for noisy in ("ultralytics", "matplotlib", "PIL"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return root


class LineProgress:
    """Progress as plain `desc: n/total (pct%)` lines at most every `interval` s: for logs and the GUI,
    where tqdm's carriage returns would garble the text."""

    def __init__(self, total=None, desc="", interval=2.0, **_):
        self.total, self.desc, self.interval, self.n = total, desc, interval, 0
        self._last = 0.0
        self._start = time.monotonic()

    def update(self, n=1):
        self.n += n
        now = time.monotonic()
        if now - self._last >= self.interval or (self.total and self.n >= self.total):
            self._last = now
            pct = f" ({100 * self.n / self.total:.0f}%)" if self.total else ""
            rate = self.n / max(now - self._start, 1e-9)
            print(f"PROGRESS {self.desc}: {self.n}/{self.total or '?'}{pct} {rate:.1f} it/s", file=sys.stderr, flush=True)

    def close(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def progress(total=None, desc=""):
    """A tqdm bar on a terminal, LineProgress otherwise."""
    if sys.stderr.isatty():
        return tqdm(total=total, desc=desc, dynamic_ncols=True, leave=False)
    return LineProgress(total=total, desc=desc)
