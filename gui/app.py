"""The dashboard's window: the stage tabs and Review, the menu, and the one running job."""
from pathlib import Path
import tkinter as tk
from tkinter import messagebox, ttk
from tkinter import font as tkfont

from gui.review import ReviewTab
from gui.stages import (DetectorTab, DiscoverTab, EvaluateTab, InferenceTab, PreprocessTab, PretrainTab, StageTab,
                        TrackTab, TrainTab)
from gui.state import load_state, remember
from utils.config import read_yaml_layer
from utils.errors import UserError

POLL_MS = 150


class BehaviorScopeApp(tk.Tk):
    TABS = (PreprocessTab, TrainTab, PretrainTab, InferenceTab, EvaluateTab, DiscoverTab, TrackTab, DetectorTab)

    def __init__(self, config_path=None):
        super().__init__()
        self.title("BehaviorScope")
        self.geometry("1340x700")  # with the title bar and a task bar, within a 1366x768 screen
        self.minsize(1000, 600)
        for name in ("TkDefaultFont", "TkTextFont", "TkMenuFont", "TkHeadingFont"):
            tkfont.nametofont(name).configure(size=10)
        self.mono = tkfont.Font(family="DejaVu Sans Mono", size=9)
        style = ttk.Style(self)
        if "clam" in style.theme_names():
            style.theme_use("clam")
        style.configure("Invalid.TEntry", foreground="#c00000", fieldbackground="#ffe8e8")
        style.configure("Invalid.TCombobox", foreground="#c00000", fieldbackground="#ffe8e8")
        # clam draws the bar in nearly the trough's grey: a full bar looked empty
        style.configure("Horizontal.TProgressbar", background="#3a78c2", troughcolor="#e4e4e4")
        self.notebook = ttk.Notebook(self)
        self.notebook.pack(fill="both", expand=True)
        self.tabs, self.job_tab = {}, None
        for cls in self.TABS:
            tab = cls(self, config_path)
            self.notebook.add(tab, text=cls.title)
            self.tabs[cls.title] = tab
        self.tabs["Review"] = ReviewTab(self)
        self.notebook.add(self.tabs["Review"], text="Review")
        self.build_menu()
        self.protocol("WM_DELETE_WINDOW", self.close)
        if config_path:
            remember("configs", str(config_path))
        else:
            self.restore_last_runs()

    def restore_last_runs(self) -> None:
        """Each tab's form as it was when it last ran (in an earlier session too); a file gone or no longer valid
        leaves the tab on its defaults."""
        state = load_state()
        for tab in self.tabs.values():
            last = state.get(tab.last_run_key, [None])[0] if isinstance(tab, StageTab) else None
            if last and Path(last).is_file():
                try:
                    tab.form.load(last)
                except UserError:
                    continue

    def build_menu(self) -> None:
        menu = tk.Menu(self)
        file_menu = tk.Menu(menu, tearoff=False)
        file_menu.add_command(label="Load config…", command=lambda: self.tabs["Preprocess"].load_config())
        recent = tk.Menu(file_menu, tearoff=False)
        for path in load_state().get("configs", []):
            recent.add_command(label=path, command=lambda p=path: self.load_config(p))
        file_menu.add_cascade(label="Recent configs", menu=recent)
        file_menu.add_separator()
        file_menu.add_command(label="Quit", command=self.close)
        menu.add_cascade(label="File", menu=file_menu)
        self.configure(menu=menu)

    def load_config(self, path) -> None:
        """A YAML fills the sections it has, in every tab (one file can serve every stage)."""
        try:
            read_yaml_layer(path)  # checked first: a bad file changes nothing
            for tab in self.tabs.values():
                if isinstance(tab, StageTab):
                    tab.form.load(path)
        except UserError as exc:
            messagebox.showerror("Invalid config", str(exc), parent=self)
            return
        remember("configs", str(path))

    def job_started(self, tab: StageTab) -> None:
        self.job_tab = tab
        self.after(POLL_MS, self._poll_job)

    def _poll_job(self) -> None:
        tab = self.job_tab
        if tab is None:
            return
        if tab.poll():
            self.job_tab = None
            return
        self.after(POLL_MS, self._poll_job)

    def close(self) -> None:
        if self.job_tab is not None and self.job_tab.job.running:
            if not messagebox.askyesno("A job is running", f"The {self.job_tab.title} job is still running. Cancel "
                                       "it (finished outputs are kept) and quit?", parent=self):
                return
            self.job_tab.job.cancel()
            self.job_tab.job.wait(timeout=30)
        self.tabs["Review"].close()
        self.destroy()
