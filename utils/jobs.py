"""Stage scripts run as subprocesses for the dashboard: argv building, progress parsing, a job runner.

No widget here: the dashboard calls `Job.poll()` from the Tk thread (every ~150 ms with `after()`); a reader
thread owns the subprocess and hands its output lines over a queue. A job is a chain of commands run one after
another (e.g. preprocessing then training); it stops at the first that fails or when cancelled.
Cancel escalates: stop file (training ends after the current batch and keeps its last completed epoch) and
SIGINT, then SIGTERM after `grace` seconds, then SIGKILL. Every stage writes its files atomically, so none of
these leaves a half-written output.
"""
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROGRESS_LINE = re.compile(r"^PROGRESS (?P<desc>.+?): (?P<n>\d+)/(?P<total>\d+|\?)(?: \(\d+%\))?(?: (?P<rate>[\d.]+) it/s)?")
ERROR_LINE = re.compile(r"^error: (?P<message>.+)$")


@dataclass
class Progress:
    desc: str
    n: int
    total: int  # 0 when unknown
    rate: float  # items per second, 0 when unknown

    @property
    def fraction(self) -> float:
        return min(self.n / self.total, 1.0) if self.total else 0.0

    @property
    def eta_seconds(self):
        """Seconds left at the current rate; None when it cannot be told."""
        if not self.total or not self.rate:
            return None
        return max(self.total - self.n, 0) / self.rate


def parse_progress(line: str):
    """A Progress from a `PROGRESS desc: n/total (pct%) rate it/s` line (utils.logging_utils.LineProgress)."""
    m = PROGRESS_LINE.match(line.strip())
    if not m:
        return None
    total = 0 if m["total"] == "?" else int(m["total"])
    return Progress(m["desc"], int(m["n"]), total, float(m["rate"] or 0.0))


def in_dashboard_terms(message: str) -> str:
    """A stage's message as a dashboard user reads it: command-line flags of settings (`--no_pretrained_backbone`,
    `--backbone none`) become the form's fields (`pretrained_backbone off`, `backbone none`)."""
    from utils.config import section_options
    from utils.schema import SECTIONS
    known = {name for cls in SECTIONS.values() for name in section_options(cls)}

    def field(match):
        negated, name = match.group(1) == "no_", match.group(2)
        if name not in known:
            return match.group(0)
        return f"'{name}' off" if negated else f"'{name}'"
    return re.sub(r"--(no_)?([a-z][a-z0-9_]*)", field, message)


def error_message(lines) -> str:
    """The one-line error a stage printed (run_cli: `error: ...`), the last one; '' when none."""
    found = ""
    for line in lines:
        m = ERROR_LINE.match(line.strip())
        if m:
            found = m["message"]
    return found


def format_seconds(seconds) -> str:
    if seconds is None:
        return "?"
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}" if seconds >= 3600 else \
        f"{seconds // 60}:{seconds % 60:02d}"


def script_command(script: str, config_path, *extra) -> list:
    """[python, -u, <repo>/<script>, --config, <file>, *extra]: how the dashboard starts every stage."""
    return script_args(script, "--config", config_path, *extra)


def script_args(script: str, *args) -> list:
    """[python, -u, <repo>/<script>, *args]: a stage script, unbuffered, with its arguments."""
    return [sys.executable, "-u", str(ROOT / script), *[str(a) for a in args]]


def let_children_be_interrupted() -> None:
    """A process started in the background by a script (`nohup ... &`, some desktop launchers) ignores SIGINT, and
    its children inherit that: Cancel's SIGINT would then never stop a stage gracefully, only the SIGTERM after the
    grace period. Python's own handler here (from the main thread; signal handlers can be set nowhere else) is
    reset to the default in each child, so the child's Python turns SIGINT into KeyboardInterrupt again."""
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.default_int_handler)


class Job:
    """A chain of commands, each a subprocess; output lines go to `log_path` and to poll(). They run in the folder
    the dashboard was started in, so a relative path in a form means what it means in the dashboard's own file
    dialogs and in the user's shell (the stage scripts are given by absolute path)."""

    def __init__(self, commands: list, log_path, stop_file=None, grace: float = 15.0, env: dict = None):
        self.commands, self.log_path = [list(c) for c in commands], Path(log_path)
        self.stop_file = Path(stop_file) if stop_file else None
        self.grace = grace
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1", "YOLO_OFFLINE": "1", **(env or {})}
        self.lines, self.returncode, self.cancelled = [], None, False
        self.started, self.cwd = None, Path.cwd()
        self._queue, self._proc, self._lock = queue.Queue(), None, threading.Lock()
        self._thread = threading.Thread(target=self._run, name="job", daemon=True)

    @property
    def running(self) -> bool:
        return self.started is not None and self.returncode is None

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started if self.started else 0.0

    def start(self) -> "Job":
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        if self.stop_file is not None:
            self.stop_file.unlink(missing_ok=True)  # a stop file left by an earlier cancel would end this run
        let_children_be_interrupted()
        self.started = time.monotonic()
        self._thread.start()
        return self

    def _run(self) -> None:
        code, ran = 0, False
        with open(self.log_path, "a", encoding="utf-8") as log:
            for command in self.commands:
                with self._lock:  # cancel() takes the lock too: no command starts after a cancel
                    if self.cancelled:
                        break
                    log.write("$ " + " ".join(command) + "\n")
                    self._queue.put("$ " + " ".join(command))
                    self._proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                                  text=True, bufsize=1, cwd=self.cwd, env=self.env)
                ran = True
                for line in self._proc.stdout:
                    log.write(line)
                    log.flush()
                    self._queue.put(line.rstrip("\n"))
                code = self._proc.wait()
                if code != 0:
                    break
        self.returncode = code if ran or not self.cancelled else 130

    def poll(self, max_lines: int = 500) -> list:
        """New output lines (at most max_lines per call, so the Tk thread never blocks on a flood)."""
        out = []
        while len(out) < max_lines:
            try:
                out.append(self._queue.get_nowait())
            except queue.Empty:
                break
        self.lines.extend(out)
        return out

    def wait(self, timeout: float = None) -> int:
        self._thread.join(timeout)
        return self.returncode

    def cancel(self) -> None:
        """Stop gracefully: stop file and SIGINT now, SIGTERM after `grace` s, SIGKILL after another `grace` s."""
        with self._lock:
            self.cancelled = True
        if self.stop_file is not None:
            self.stop_file.parent.mkdir(parents=True, exist_ok=True)
            self.stop_file.touch()
        threading.Thread(target=self._escalate, name="job-cancel", daemon=True).start()

    def _escalate(self) -> None:
        with self._lock:
            proc = self._proc
        if proc is None:
            return
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGKILL):
            if proc.poll() is not None:
                return
            proc.send_signal(sig)
            try:
                proc.wait(self.grace)
                return
            except subprocess.TimeoutExpired:
                continue
