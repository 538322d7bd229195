"""Wall-clock time per pipeline stage (load, decode, detect, crop, backbone, head, write), for reports."""
import time
from collections import defaultdict
from contextlib import contextmanager


class StageTimer:
    def __init__(self):
        self.seconds = defaultdict(float)

    @contextmanager
    def stage(self, name: str):
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] += time.perf_counter() - start

    def timed_iter(self, name: str, iterable):
        """Iterate, charging the time spent producing each item to `name` (e.g. video decoding)."""
        iterator = iter(iterable)
        while True:
            with self.stage(name):
                try:
                    item = next(iterator)
                except StopIteration:
                    return
            yield item
