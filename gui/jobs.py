"""One view of a running job, for every tab that runs one: the stage scripts' tabs and Review's retrain.

The job (utils.jobs.Job) runs the stage scripts as subprocesses; the app polls the tab every POLL_MS and the tab
hands the poll to its JobView, which streams the output lines into the tab's log pane, drives the progress bar and
the status line from PROGRESS lines (elapsed, ETA), and at the end says how it ended (finished, cancelled: finished
outputs are kept, FAILED: the error dialog with the log's path). Warnings the job printed (a drift warning, damaged
input) stay in a banner under the tab until its next run: the log scrolls on and result tabs open over it."""
import tkinter as tk
from tkinter import ttk

from gui.widgets import replace_text, show_error_dialog, writable
from utils.jobs import error_message, format_seconds, in_dashboard_terms, parse_progress

LOG_LINES = 3000  # the log pane keeps the last lines; the full log is in the run folder
BANNER_WARNINGS = 3  # warnings shown in full in the banner; the rest are counted


def is_our_warning(line: str) -> bool:
    """A warning of BehaviorScope's own logging ("WARNING <message>"); Ultralytics' notices ("WARNING ⚠️ ...", in
    colour) are about its own setup, not the user's data, and stay in the log only."""
    return line.startswith("WARNING ") and not line[len("WARNING "):].startswith("\u26a0") and "\x1b[" not in line


class JobView:
    def __init__(self, owner, title: str, log: tk.Text, progress: ttk.Progressbar, status: tk.StringVar):
        self.owner, self.title, self.log, self.progress, self.status = owner, title, log, progress, status
        self.job, self.warnings = None, []
        self.banner = tk.Label(owner, anchor="w", justify="left", background="#fff3c4", foreground="#5a4500",
                               wraplength=1240, padx=8, pady=4)

    def start(self, job) -> None:
        self.job, self.warnings = job, []
        self.banner.pack_forget()
        replace_text(self.log, "")
        self.progress.configure(value=0)
        self.status.set(f"{self.title}: started")

    def cancel(self) -> None:
        if self.job is not None and self.job.running:
            self.job.cancel()
            self.status.set("cancelling: the stage finishes its current step and keeps what is complete…")

    def poll(self) -> bool:
        """Show what the job printed since the last poll; True once it has ended (and its end is shown)."""
        lines = self.job.poll()
        progress = None
        for line in lines:
            progress = parse_progress(line) or progress
        self._show([line for line in lines if not line.startswith("PROGRESS")])
        if progress is not None:
            self.progress.configure(value=100 * progress.fraction)
            self.status.set(f"{'cancelling… | ' if self.job.cancelled else ''}{progress.desc}: {progress.n}/"
                            f"{progress.total or '?'} | elapsed {format_seconds(self.job.elapsed)} | ETA "
                            f"{format_seconds(progress.eta_seconds)}")
        if self.job.running:
            return False
        self._show([line for line in self.job.poll(max_lines=10 ** 9) if not line.startswith("PROGRESS")])
        self._show_end()
        return True

    @property
    def succeeded(self) -> bool:
        return self.job is not None and not self.job.running and self.job.returncode == 0 and not self.job.cancelled

    def _show(self, lines: list) -> None:
        if not lines:
            return
        self.warnings += [line[len("WARNING "):] for line in lines if is_our_warning(line)]
        with writable(self.log):
            self.log.insert("end", "\n".join(lines) + "\n")
            excess = int(self.log.index("end-1c").split(".")[0]) - LOG_LINES
            if excess > 0:
                self.log.delete("1.0", f"{excess}.0")
        self.log.see("end")

    def _show_warnings(self) -> None:
        if not self.warnings:
            return
        shown = self.warnings[:BANNER_WARNINGS]
        more = len(self.warnings) - len(shown)
        self.banner.configure(text="\n".join(f"\u26a0 {w}" for w in shown) +
                              (f"\n… and {more} more warning(s) in the Log" if more else ""))
        self.banner.pack(side="bottom", fill="x")

    def _show_end(self) -> None:
        self._show_warnings()
        code, took = self.job.returncode, format_seconds(self.job.elapsed)
        if self.job.cancelled:
            self.status.set(f"cancelled after {took} (exit {code}); finished outputs are kept")
        elif code == 0:
            self.progress.configure(value=100)
            self.status.set(f"finished in {took} (exit 0)" +
                            (f"; {len(self.warnings)} warning(s), below" if self.warnings else ""))
        else:
            self.status.set(f"FAILED after {took} (exit {code})")
            message = error_message(self.job.lines) or (self.job.lines[-1] if self.job.lines else "no output")
            show_error_dialog(self.owner, f"{self.title} failed", in_dashboard_terms(message), self.job.log_path)
