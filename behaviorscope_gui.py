"""BehaviorScope dashboard: every stage in one window, and a review loop that turns predictions into labels.

Usage:
    python behaviorscope_gui.py                      # tabs Preprocess, Train, Inference, Evaluate, Track,
                                                     # Detector, Review
    python behaviorscope_gui.py --config my_lab.yaml # forms start from your YAML
    python behaviorscope_gui.py --review_video v.mp4 --review_frames results/v.frames.csv  # Review tab on a result

Forms are generated from the settings schema (utils/schema.py) and the registries: the widget follows the
type, ranges and choices are checked as you type (a wrong value turns red; its reason is in the status line),
each setting's help is its tooltip. Run writes the tab's settings into the run folder and starts the stage
script as a subprocess (`python -u script --config file`); its output streams into the log pane, progress
lines drive the bar, elapsed time and ETA. Cancel stops gracefully (stop file / Ctrl-C, then terminate, then
kill); every stage writes its files atomically. One job runs at a time.
Review: open a video with its predictions (<video>.frames.csv), play and seek, correct bouts (confirm,
relabel, split, move boundaries, merge, delete; undo/redo; saved after every edit), export the labels as the
per-frame CSV preprocessing reads, see how well the model agreed, and retrain from the current model on the
corrected videos.
"""
import argparse
import json
import os
import shlex
import sys
import time
import tkinter as tk
from datetime import datetime
from pathlib import Path
from tkinter import filedialog, messagebox, ttk
from tkinter import font as tkfont

import numpy as np
import pandas as pd
import yaml

from utils.config import (from_recorded, parse_scalar, read_yaml_layer, resolve_config, section_name, section_options,
                          settings_dict, validate_value)
from utils.errors import UserError, run_cli
from utils.jobs import Job, error_message, format_seconds, parse_progress, script_command
from utils.pose_io import recording_name
from utils.schema import (TRACKING_SETTINGS, AugmentConfig, DetectorTrainingConfig, InferenceConfig, ModelSettings,
                          PreprocessingConfig, TrainingConfig)
from utils.zones import zone_text

STATE_PATH = Path(os.environ.get("BEHAVIORSCOPE_GUI_STATE", Path.home() / ".config" / "behaviorscope" / "gui.json"))
POLL_MS = 150
LOG_LINES = 3000  # the log pane keeps the last lines; the full log is in the run folder


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0], add_help=add_help, epilog=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=None, metavar="PATH", help="YAML whose sections fill the forms")
    parser.add_argument("--review_video", default=None, metavar="VIDEO",
                        help="open the Review tab on this video (its labels beside it are shown as truth)")
    parser.add_argument("--review_frames", default=None, metavar="CSV",
                        help="with --review_video: its predictions; default <video stem>.frames.csv beside it")
    parser.add_argument("--review_model", default=None, metavar="PT",
                        help="with --review_video: the checkpoint that made the predictions (for Retrain)")
    return parser


# ------------------------------------------------------------------------------------------------ state
def load_state() -> dict:
    try:
        return json.loads(STATE_PATH.read_text())
    except (OSError, ValueError):
        return {}


def remember(key: str, value: str, keep: int = 10) -> None:
    """Most recent first, without duplicates; the state file is small and rewritten each time."""
    from utils.io import atomic_write_text
    state = load_state()
    state[key] = [value] + [v for v in state.get(key, []) if v != value][: keep - 1]
    atomic_write_text(STATE_PATH, json.dumps(state, indent=1))


# -------------------------------------------------------------------------------------------- widgets
class Tooltip:
    def __init__(self, widget, text_fn):
        self.widget, self.text_fn, self.tip, self.job = widget, text_fn, None, None
        widget.bind("<Enter>", lambda e: self._schedule(), add="+")
        widget.bind("<Leave>", lambda e: self._hide(), add="+")
        widget.bind("<ButtonPress>", lambda e: self._hide(), add="+")
        widget.bind("<Unmap>", lambda e: self._hide(), add="+")

    def _schedule(self):
        self.job = self.widget.after(500, self._show)

    def _show(self):
        text = self.text_fn()
        if not text:
            return
        x, y = self.widget.winfo_rootx() + 10, self.widget.winfo_rooty() + self.widget.winfo_height() + 4
        self.tip = tk.Toplevel(self.widget)
        self.tip.wm_overrideredirect(True)
        self.tip.geometry(f"+{x}+{y}")
        tk.Label(self.tip, text=text, justify="left", wraplength=420, background="#ffffe0", relief="solid",
                 borderwidth=1, padx=4, pady=2).pack()
        self.job = self.widget.after(8000, self._hide)  # never left standing over the form

    def _hide(self):
        if self.job:
            self.widget.after_cancel(self.job)
        if self.tip:
            self.tip.destroy()
        self.tip = self.job = None


def parse_text(opt, text: str):
    """A form's text -> a typed, validated value (UserError naming the setting otherwise)."""
    text = text.strip()
    if text == "":
        return validate_value(opt, None)
    try:
        if opt.kind == "int":
            value = int(text)
        elif opt.kind == "float":
            value = float(text)
        elif opt.kind == "bool":
            value = {"true": True, "false": False}.get(text.lower(), text)
        elif opt.kind == "list":  # space-separated items; quotes keep spaces inside one (a path, a zone name)
            value = [parse_scalar(v) for v in shlex.split(text.replace(",", " ") if opt.name == "flip_idx" else text)]
        else:
            value = text
    except ValueError:
        raise UserError(f"{opt.name}={text!r} is not a valid {opt.kind}") from None
    return validate_value(opt, value)


def format_value(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):  # zones from a YAML file are dicts: shown in their command-line form
        return " ".join(shlex.quote(zone_text(v) if isinstance(v, dict) else str(v)) for v in value)
    return str(value)


class Field:
    """One setting's widget, chosen by its type; validates on every change."""

    def __init__(self, parent, opt, row: int, column: int, on_change):
        self.opt, self.on_change, self.error = opt, on_change, ""
        label = ttk.Label(parent, text=opt.name)
        label.grid(row=row, column=column, sticky="w", padx=(6, 4), pady=2)
        self.var = tk.StringVar()
        if opt.kind == "bool" and not opt.optional:
            self.var = tk.BooleanVar()
            self.widget = ttk.Checkbutton(parent, variable=self.var)
        elif opt.kind == "choice" or opt.kind == "bool":
            values = list(opt.choices) if opt.kind == "choice" else ["true", "false"]
            self.widget = ttk.Combobox(parent, textvariable=self.var, values=([""] if opt.optional else []) + values,
                                       state="readonly", width=max(12, min(24, max(len(v) for v in values) + 2)))
        else:
            self.widget = ttk.Entry(parent, textvariable=self.var, width=24)
        self.widget.grid(row=row, column=column + 1, sticky="we", pady=2)
        if opt.kind == "path":
            ttk.Button(parent, text="…", width=2, command=self.browse).grid(row=row, column=column + 2, padx=(2, 8))
        tip = lambda: f"{opt.help}\n[{opt.kind}{', ' + opt.range_text if opt.range_text else ''}]" + (  # noqa: E731
            f"\n\u26a0 {self.error}" if self.error else "")
        Tooltip(label, tip)
        Tooltip(self.widget, tip)
        self.var.trace_add("write", lambda *_: self.check())

    def browse(self) -> None:
        folder = self.opt.name.endswith(("_dir", "_root"))
        start = Path(self.var.get()).parent if self.var.get() else load_state().get("dirs", [""])[0]
        path = (filedialog.askdirectory(initialdir=start or None) if folder
                else filedialog.askopenfilename(initialdir=start or None))
        if path:
            self.var.set(path)
            remember("dirs", str(Path(path).parent if not folder else Path(path)))

    def get(self):
        if isinstance(self.var, tk.BooleanVar):
            return bool(self.var.get())
        return parse_text(self.opt, self.var.get())

    def set(self, value) -> None:
        self.var.set(bool(value) if isinstance(self.var, tk.BooleanVar) else format_value(value))

    def check(self) -> None:
        try:
            self.get()
            self.error = ""
        except UserError as exc:
            self.error = str(exc)
        if isinstance(self.widget, ttk.Entry):
            self.widget.configure(style="Invalid.TEntry" if self.error else "TEntry")
        self.on_change(self)


class ScrollFrame(ttk.Frame):
    """A vertically scrolling frame (forms are longer than a laptop screen)."""

    def __init__(self, parent):
        super().__init__(parent)
        self.canvas = tk.Canvas(self, highlightthickness=0, width=780)  # the form gets most of a 1366 px screen
        bar = ttk.Scrollbar(self, orient="vertical", command=self.canvas.yview)
        self.inner = ttk.Frame(self.canvas)
        self.inner.bind("<Configure>", lambda e: self.canvas.configure(scrollregion=self.canvas.bbox("all")))
        window = self.canvas.create_window((0, 0), window=self.inner, anchor="nw")
        self.canvas.bind("<Configure>", lambda e: self.canvas.itemconfigure(window, width=e.width))
        self.canvas.configure(yscrollcommand=bar.set)
        self.canvas.pack(side="left", fill="both", expand=True)
        bar.pack(side="right", fill="y")
        for sequence, delta in (("<Button-4>", -2), ("<Button-5>", 2)):
            self.inner.bind_all(sequence, lambda e, d=delta: self._scroll(e, d), add="+")
        self.inner.bind_all("<MouseWheel>", lambda e: self._scroll(e, -int(e.delta / 60) or -1), add="+")

    def _scroll(self, event, delta) -> None:
        widget = event.widget
        while widget is not None:  # only when the pointer is over this frame
            if widget is self:
                self.canvas.yview_scroll(delta, "units")
                return
            widget = getattr(widget, "master", None)


class SettingsForm(ScrollFrame):
    """Fields for the settings of the given sections, two per row, their starting values resolved like the
    scripts do (schema < default_config.yaml < --config): the dashboard has no default of its own."""

    def __init__(self, parent, classes, status_var: tk.StringVar, config_path=None, only=None):
        super().__init__(parent)
        self.classes, self.status_var, self.fields = classes, status_var, {}
        for cls in classes:
            section = section_name(cls)
            box = ttk.LabelFrame(self.inner, text=section)
            box.pack(fill="x", padx=4, pady=4)
            ttk.Label(box, text=" ".join((cls.__doc__ or "").split()), foreground="#555", wraplength=720
                      ).grid(row=0, column=0, columnspan=6, sticky="w", padx=6)
            for c in (1, 4):
                box.columnconfigure(c, weight=1)
            shown = [(n, o) for n, o in section_options(cls).items() if not only or cls not in only or n in only[cls]]
            for i, (name, opt) in enumerate(shown):
                self.fields[(section, name)] = Field(box, opt, 1 + i // 2, 3 * (i % 2), self._changed)
        self.load(config_path)

    def _changed(self, field: Field) -> None:
        if field.error:
            self.status_var.set(f"\u26a0 {field.error}")
        elif self.status_var.get().startswith("\u26a0"):
            self.status_var.set(self.first_error() or "")

    def first_error(self) -> str:
        return next((f"\u26a0 {f.error}" for f in self.fields.values() if f.error), "")

    def load(self, config_path=None) -> None:
        """Fill every field from the resolved settings (with the YAML's sections when given)."""
        args = argparse.Namespace(config=str(config_path) if config_path else None)
        for cls in self.classes:
            resolved = settings_dict(resolve_config(args, cls))
            for name, value in resolved.items():
                if (section_name(cls), name) in self.fields:
                    self.fields[(section_name(cls), name)].set(value)

    def values(self) -> dict:
        """{section: {key: typed value}}; a UserError naming the first invalid setting."""
        out = {}
        for (section, name), field in self.fields.items():
            out.setdefault(section, {})[name] = field.get()
        return out

    def set(self, section: str, name: str, value) -> None:
        self.fields[(section, name)].set(value)

    def get(self, section: str, name: str):
        return self.fields[(section, name)].get()


class ImagePane(ttk.Frame):
    """A PNG scaled to the pane; reloaded when the file changes (e.g. training curves after each epoch)."""

    def __init__(self, parent):
        super().__init__(parent)
        self.label = ttk.Label(self, anchor="center", text="(nothing yet)")
        self.label.pack(fill="both", expand=True)
        self.path, self.mtime, self.photo = None, None, None
        self.bind("<Configure>", lambda e: self.show(self.path, force=True))

    def show(self, path, force: bool = False) -> None:
        from PIL import Image, ImageTk
        if path is None or not Path(path).is_file():
            return
        mtime = Path(path).stat().st_mtime
        if not force and path == self.path and mtime == self.mtime:
            return
        self.path, self.mtime = path, mtime
        try:
            image = Image.open(path)
            image.load()
        except OSError:
            return  # being replaced right now: the next poll shows it
        w, h = max(self.winfo_width(), 200), max(self.winfo_height(), 150)
        image.thumbnail((w - 8, h - 8))
        self.photo = ImageTk.PhotoImage(image)
        self.label.configure(image=self.photo, text="")


def format_cell(value) -> str:
    if isinstance(value, float):
        return "" if np.isnan(value) else f"{value:.3f}"
    return str(value)


class TablePane(ttk.Frame):
    """A DataFrame in a Treeview (click a header to sort)."""

    def __init__(self, parent, height: int = 12):
        super().__init__(parent)
        self.tree = ttk.Treeview(self, show="headings", height=height)
        bar = ttk.Scrollbar(self, orient="vertical", command=self.tree.yview)
        self.tree.configure(yscrollcommand=bar.set)
        self.tree.pack(side="left", fill="both", expand=True)
        bar.pack(side="right", fill="y")
        self.frame = None

    def show(self, frame: pd.DataFrame) -> None:
        self.frame = frame.reset_index(drop=True)
        self.tree.delete(*self.tree.get_children())
        columns = [str(c) for c in frame.columns]
        self.tree.configure(columns=columns)
        for i, c in enumerate(columns):
            self.tree.heading(c, text=c, command=lambda c=c: self.sort(c))
            longest = max([len(c), *(len(format_cell(v)) for v in frame.iloc[:200, i])])
            self.tree.column(c, width=max(60, min(220, 20 + 9 * longest)), anchor="w")
        for row in frame.itertuples(index=False):
            self.tree.insert("", "end", values=[format_cell(v) for v in row])

    def sort(self, column: str) -> None:
        if self.frame is not None:
            ascending = not getattr(self, "_ascending", False)
            self._ascending = ascending
            self.show(self.frame.sort_values(column, ascending=ascending, kind="stable"))


def show_error_dialog(root, title: str, message: str, log_path) -> None:
    """The stage's one-line error, with a button that opens its log."""
    top = tk.Toplevel(root)
    top.title(title)
    top.transient(root)
    ttk.Label(top, text=message, wraplength=560, justify="left", padding=12).pack(fill="x")
    buttons = ttk.Frame(top, padding=(12, 0, 12, 12))
    buttons.pack(fill="x")
    ttk.Button(buttons, text="Open log", command=lambda: show_text(root, str(log_path),
                                                                  Path(log_path).read_text(errors="replace"))
               ).pack(side="left")
    ttk.Button(buttons, text="Close", command=top.destroy).pack(side="right")


def show_text(root, title: str, text: str) -> None:
    top = tk.Toplevel(root)
    top.title(title)
    top.geometry("900x500")
    box = tk.Text(top, wrap="none")
    box.insert("1.0", text)
    box.see("end")
    box.pack(fill="both", expand=True)


# ---------------------------------------------------------------------------------------------- stage tabs
class StageTab(ttk.Frame):
    """Form on the left; log and results on the right; Run / Cancel, progress, elapsed and ETA below."""
    title, script, classes, required = "", "", (), ()
    only = None  # {section class: names} for a stage that reads a few settings of a section

    def __init__(self, app, config_path=None):
        super().__init__(app.notebook)
        self.app, self.job, self.job_folder = app, None, None
        self.status = tk.StringVar(value="ready")
        panes = ttk.PanedWindow(self, orient="horizontal")
        panes.pack(fill="both", expand=True)
        left = ttk.Frame(panes)
        self.build_inputs(left)
        self.form = SettingsForm(left, self.classes, self.status, config_path, self.only)
        self.form.pack(fill="both", expand=True)
        panes.add(left, weight=3)
        self.outputs = ttk.Notebook(panes)
        log_frame = ttk.Frame(self.outputs)
        self.log = tk.Text(log_frame, height=10, width=56, wrap="none", font=app.mono)
        bar = ttk.Scrollbar(log_frame, orient="vertical", command=self.log.yview)
        self.log.configure(yscrollcommand=bar.set)
        self.log.pack(side="left", fill="both", expand=True)
        bar.pack(side="right", fill="y")
        self.outputs.add(log_frame, text="Log")
        self.build_results(self.outputs)
        panes.add(self.outputs, weight=2)
        self.build_controls()

    # hooks of each tab
    def build_inputs(self, parent) -> None:
        """Inputs that are script arguments rather than settings (e.g. a folder to run on)."""

    def build_results(self, notebook) -> None:
        pass

    def run_folder(self, values: dict) -> Path:
        raise NotImplementedError

    def commands(self, config_path: Path, values: dict) -> list:
        return [script_command(self.script, config_path)]

    def stop_file(self, values: dict):
        return None

    def show_results(self, values: dict, finished: bool) -> None:
        pass

    # shared behaviour
    def build_controls(self) -> None:
        bar = ttk.Frame(self, padding=(4, 4))
        bar.pack(fill="x")
        ttk.Button(bar, text="Load config…", command=self.load_config).pack(side="left")
        ttk.Button(bar, text="Save config…", command=self.save_config).pack(side="left", padx=4)
        self.run_button = ttk.Button(bar, text="Run", command=self.run)
        self.run_button.pack(side="left", padx=(12, 4))
        self.cancel_button = ttk.Button(bar, text="Cancel", command=self.cancel, state="disabled")
        self.cancel_button.pack(side="left")
        self.progress = ttk.Progressbar(bar, length=220, maximum=100)
        self.progress.pack(side="left", padx=12)
        ttk.Label(bar, textvariable=self.status, width=60).pack(side="left", fill="x", expand=True)

    def load_config(self) -> None:
        path = filedialog.askopenfilename(filetypes=[("YAML", "*.yaml *.yml"), ("all", "*")])
        if path:
            self.app.load_config(path)

    def save_config(self) -> None:
        try:
            values = self.form.values()
        except UserError as exc:
            messagebox.showerror("Invalid setting", str(exc), parent=self)
            return
        path = filedialog.asksaveasfilename(defaultextension=".yaml", filetypes=[("YAML", "*.yaml")])
        if path:
            write_config(path, self.merge_into_existing(path, values))
            remember("configs", path)

    @staticmethod
    def merge_into_existing(path, values: dict) -> dict:
        """Other stages' sections of an existing file are kept: one YAML can serve every stage."""
        existing = yaml.safe_load(Path(path).read_text()) if Path(path).is_file() else None
        return {**(existing if isinstance(existing, dict) else {}), **values}

    def validated_values(self) -> dict:
        values = self.form.values()
        for section, settings in values.items():
            for name in self.required:
                if name in settings and settings[name] in (None, ""):
                    raise UserError(f"{name} is required: fill it in the {section} section")
        return values

    def run(self) -> None:
        if self.app.job_tab is not None:
            messagebox.showinfo("A job is running", f"Wait for the {self.app.job_tab.title} job or cancel it: one "
                                "job runs at a time.", parent=self)
            return
        try:
            values = self.validated_values()
            folder = self.run_folder(values)
            config_path = folder / f"gui_{self.title.lower()}.yaml"
            write_config(config_path, values)
            commands = self.commands(config_path, values)
        except (UserError, OSError) as exc:
            messagebox.showerror("Cannot run", str(exc), parent=self)
            return
        self.job_folder, self.job_values = folder, values
        self.job = Job(commands, folder / f"gui_{self.title.lower()}.log", self.stop_file(values)).start()
        self.log.delete("1.0", "end")
        self.progress.configure(value=0)
        self.run_button.configure(state="disabled")
        self.cancel_button.configure(state="normal")
        self.app.job_started(self)

    def cancel(self) -> None:
        if self.job is not None and self.job.running:
            self.job.cancel()
            self.status.set("cancelling: the stage finishes its current step and keeps what is complete…")

    def poll(self) -> bool:
        """Called by the app every POLL_MS while this tab's job runs; True when the job has ended."""
        lines = self.job.poll()
        progress = None
        for line in lines:
            progress = parse_progress(line) or progress
        shown = [line for line in lines if not line.startswith("PROGRESS")]
        if shown:
            self.log.insert("end", "\n".join(shown) + "\n")
            excess = int(self.log.index("end-1c").split(".")[0]) - LOG_LINES
            if excess > 0:
                self.log.delete("1.0", f"{excess}.0")
            self.log.see("end")
        if progress is not None:
            self.progress.configure(value=100 * progress.fraction)
            self.status.set(f"{progress.desc}: {progress.n}/{progress.total or '?'} | elapsed "
                            f"{format_seconds(self.job.elapsed)} | ETA {format_seconds(progress.eta_seconds)}")
        if self.job.running:
            self.show_results(self.job_values, finished=False)
            return False
        self.poll_rest()
        return True

    def poll_rest(self) -> None:
        rest = self.job.poll(max_lines=10 ** 9)
        if rest:
            self.log.insert("end", "\n".join(r for r in rest if not r.startswith("PROGRESS")) + "\n")
            self.log.see("end")
        code, cancelled = self.job.returncode, self.job.cancelled
        self.run_button.configure(state="normal")
        self.cancel_button.configure(state="disabled")
        took = format_seconds(self.job.elapsed)
        if cancelled:
            self.status.set(f"cancelled after {took} (exit {code}); finished outputs are kept")
        elif code == 0:
            self.progress.configure(value=100)
            self.status.set(f"finished in {took} (exit 0)")
        else:
            self.status.set(f"FAILED after {took} (exit {code})")
            message = error_message(self.job.lines) or (self.job.lines[-1] if self.job.lines else "no output")
            show_error_dialog(self, f"{self.title} failed", message, self.job.log_path)
        self.show_results(self.job_values, finished=True)


def write_config(path, values: dict) -> None:
    from utils.io import atomic_write_text
    atomic_write_text(path, yaml.safe_dump(values, sort_keys=False))


def folder_entry(parent, label: str, var: tk.StringVar, row: int) -> None:
    ttk.Label(parent, text=label).grid(row=row, column=0, sticky="w", padx=6)
    ttk.Entry(parent, textvariable=var, width=48).grid(row=row, column=1, sticky="we", pady=2)
    ttk.Button(parent, text="…", width=2,
               command=lambda: var.set(filedialog.askdirectory() or var.get())).grid(row=row, column=2, padx=4)


class PreprocessTab(StageTab):
    title, script, classes = "Preprocess", "prepare_sequences_from_yolo.py", (PreprocessingConfig,)
    required = ("dataset_root", "output_root")

    def build_results(self, notebook) -> None:
        self.table = TablePane(notebook)
        notebook.add(self.table, text="Windows per class")

    def run_folder(self, values: dict) -> Path:
        return Path(values["preprocessing"]["output_root"])

    def show_results(self, values: dict, finished: bool) -> None:
        pre = values["preprocessing"]
        path = Path(pre["manifest_path"] or Path(pre["output_root"]) / "sequence_manifest.json")
        if finished and path.is_file():
            manifest = json.loads(path.read_text())
            rows = {}
            for split, entries in manifest["splits"].items():
                for e in entries:
                    rows.setdefault(e["class_name"], {"class": e["class_name"], "train": 0, "val": 0, "test": 0})
                    rows[e["class_name"]][split] += 1
            self.table.show(pd.DataFrame(sorted(rows.values(), key=lambda r: r["class"])))
            self.outputs.select(self.table)
            self.app.tabs["Train"].form.set("training", "manifest_path", str(path))


class TrainTab(StageTab):
    title, script = "Train", "train_behavior_lstm.py"
    classes, required = (AugmentConfig, ModelSettings, TrainingConfig), ("manifest_path",)

    def build_results(self, notebook) -> None:
        self.curves, self.per_class = ImagePane(notebook), TablePane(notebook)
        notebook.add(self.curves, text="Training curves")
        notebook.add(self.per_class, text="Per class (best macro-F1)")
        self.confusion = TablePane(notebook)
        notebook.add(self.confusion, text="Confusion (best macro-F1)")

    def validated_values(self) -> dict:
        if not self.form.get("training", "run_name"):  # the run folder must be known to show results and stop
            self.form.set("training", "run_name", datetime.now().strftime("behavior_%Y%m%d_%H%M%S"))
        return super().validated_values()

    def run_folder(self, values: dict) -> Path:
        return Path(values["training"]["output_dir"]) / values["training"]["run_name"]

    def stop_file(self, values: dict):
        return self.run_folder(values) / values["training"]["stop_file"]

    def show_results(self, values: dict, finished: bool) -> None:
        folder = self.run_folder(values)
        self.curves.show(folder / "training_curves.png")
        if finished:
            for pane, name in ((self.per_class, "per_class_metrics_best_macro_f1.csv"),
                               (self.confusion, "confusion_matrix_best_macro_f1.csv")):
                if (folder / name).is_file():
                    pane.show(pd.read_csv(folder / name))
            if (folder / "best_model_macro_f1.pt").is_file():
                self.app.tabs["Inference"].form.set("inference", "model_path", str(folder / "best_model_macro_f1.pt"))
            self.outputs.select(self.curves)


class TrackTab(StageTab):
    """Tracking only (track_video.py), for labs without a classifier yet: path, distance, speed, zones."""
    title, script, classes, only = "Track", "track_video.py", (PreprocessingConfig, InferenceConfig), TRACKING_SETTINGS

    def build_inputs(self, parent) -> None:
        self.video_path, self.output_dir = tk.StringVar(), tk.StringVar()
        box = ttk.LabelFrame(parent, text="recordings: a video, a pose file or a folder of videos")
        box.pack(fill="x", padx=4, pady=4)
        box.columnconfigure(1, weight=1)
        ttk.Label(box, text="video_path").grid(row=0, column=0, sticky="w", padx=6)
        ttk.Entry(box, textvariable=self.video_path, width=48).grid(row=0, column=1, sticky="we", pady=2)
        ttk.Button(box, text="…", width=2, command=lambda: self.video_path.set(
            filedialog.askopenfilename() or self.video_path.get())).grid(row=0, column=2, padx=4)
        folder_entry(box, "output_dir", self.output_dir, 1)

    def build_results(self, notebook) -> None:
        self.trajectory, self.speed, self.summary = ImagePane(notebook), ImagePane(notebook), TablePane(notebook)
        notebook.add(self.trajectory, text="Trajectory")
        notebook.add(self.speed, text="Speed")
        notebook.add(self.summary, text="Summary")

    def run_folder(self, values: dict) -> Path:
        source = Path(self.video_path.get())
        if not self.video_path.get() or not source.exists():
            raise UserError(f"video_path {self.video_path.get()!r} does not exist: pick a video, pose file or folder")
        return Path(self.output_dir.get() or (source if source.is_dir() else source.parent))

    def commands(self, config_path: Path, values: dict) -> list:
        return [script_command(self.script, config_path, "--video_path", self.video_path.get(),
                               "--output_dir", self.run_folder(values))]

    def show_results(self, values: dict, finished: bool) -> None:
        source, folder = Path(self.video_path.get()), self.run_folder(values)
        if not finished or source.is_dir():
            return
        stem = recording_name(source)
        self.trajectory.show(folder / f"{stem}.trajectory.png")
        self.speed.show(folder / f"{stem}.speed.png")
        if (folder / f"{stem}.tracking.xlsx").is_file():
            summary = pd.read_excel(folder / f"{stem}.tracking.xlsx", sheet_name="summary")
            self.summary.show(pd.DataFrame({"measure": summary.columns, "value": summary.iloc[0].to_numpy()}))
            self.outputs.select(self.trajectory)


class DetectorTab(StageTab):
    """Training a YOLO-pose detector for your arena (train_detector.py); its best.pt goes to Preprocess."""
    title, script, classes = "Detector", "train_detector.py", (DetectorTrainingConfig,)

    def build_results(self, notebook) -> None:
        self.report = TablePane(notebook)
        notebook.add(self.report, text="Held-out keypoint error")

    def run_folder(self, values: dict) -> Path:
        return Path(values["detector_training"]["output_dir"])

    def show_results(self, values: dict, finished: bool) -> None:
        report = self.run_folder(values) / "report.json"
        if finished and report.is_file():
            self.report.show(pd.DataFrame(list(json.loads(report.read_text()).items()), columns=["measure", "value"]))
            self.outputs.select(self.report)
            self.app.tabs["Preprocess"].form.set("preprocessing", "yolo_weights", str(report.with_name("best.pt")))


class FolderRunTab(StageTab):
    """Inference settings plus a folder to run on (folder runs load the model and detector once)."""
    classes, required = (InferenceConfig,), ("model_path",)

    def build_inputs(self, parent) -> None:
        self.input_dir, self.output_root = tk.StringVar(), tk.StringVar()
        self.folder_box = ttk.LabelFrame(parent, text=self.folder_title)
        self.folder_box.pack(fill="x", padx=4, pady=4)
        self.folder_box.columnconfigure(1, weight=1)
        folder_entry(self.folder_box, "input_dir", self.input_dir, 0)
        folder_entry(self.folder_box, "output_root", self.output_root, 1)

    def folder_args(self) -> list:
        if not self.input_dir.get() or not self.output_root.get():
            raise UserError("input_dir and output_root are required: pick the folder of videos and an output folder")
        return ["--input_dir", self.input_dir.get(), "--output_root", self.output_root.get()]


class InferenceTab(FolderRunTab):
    title, folder_title = "Inference", "folder (batch) mode: every video under input_dir"

    def build_inputs(self, parent) -> None:
        self.mode = tk.StringVar(value="video")
        modes = ttk.Frame(parent)
        modes.pack(fill="x", padx=4, pady=(4, 0))
        ttk.Radiobutton(modes, text="one video (video_path below)", value="video", variable=self.mode).pack(side="left")
        ttk.Radiobutton(modes, text="a folder of videos", value="folder", variable=self.mode).pack(side="left", padx=8)
        super().build_inputs(parent)

    def build_results(self, notebook) -> None:
        self.ethogram, self.bouts = ImagePane(notebook), TablePane(notebook)
        notebook.add(self.ethogram, text="Ethogram")
        notebook.add(self.bouts, text="Bouts / batch summary")

    def run_folder(self, values: dict) -> Path:
        inference = values["inference"]
        if self.mode.get() == "folder":
            return Path(self.folder_args()[3])
        if not inference["video_path"]:
            raise UserError("video_path is required in one-video mode: pick the video to classify")
        return Path(inference["output_dir"] or Path(inference["video_path"]).parent)

    def commands(self, config_path: Path, values: dict) -> list:
        if self.mode.get() == "folder":
            return [script_command("batch_process_videos.py", config_path, *self.folder_args())]
        return [script_command("infer_behavior_lstm.py", config_path)]

    def show_results(self, values: dict, finished: bool) -> None:
        if not finished:
            return
        folder = self.run_folder(values)
        if self.mode.get() == "folder":
            summaries = sorted(folder.glob("batch_summary_*.csv"))
            if summaries:
                self.bouts.show(pd.read_csv(summaries[-1]))
            return
        stem = Path(values["inference"]["video_path"]).stem
        self.ethogram.show(folder / f"{stem}.ethogram.png")
        if (folder / f"{stem}.behavior.csv").is_file():
            self.bouts.show(pd.read_csv(folder / f"{stem}.behavior.csv"))
            self.outputs.select(self.ethogram)
            self.app.tabs["Review"].suggest(values["inference"]["video_path"], folder / f"{stem}.frames.csv",
                                            values["inference"]["model_path"])


class EvaluateTab(FolderRunTab):
    title, script, folder_title = "Evaluate", "benchmark_pipeline.py", "labelled videos (label file beside each video)"

    def build_results(self, notebook) -> None:
        self.per_class, self.confusion, self.ethogram = TablePane(notebook), ImagePane(notebook), ImagePane(notebook)
        notebook.add(self.per_class, text="Per class")
        notebook.add(self.confusion, text="Confusion matrix")
        notebook.add(self.ethogram, text="Truth vs prediction")

    def run_folder(self, values: dict) -> Path:
        return Path(self.folder_args()[3])

    def commands(self, config_path: Path, values: dict) -> list:
        return [script_command(self.script, config_path, *self.folder_args())]

    def show_results(self, values: dict, finished: bool) -> None:
        folder = self.run_folder(values)
        if not finished or not (folder / "eval_results.json").is_file():
            return
        scores = json.loads((folder / "eval_results.json").read_text())["scores"]
        table = pd.DataFrame([{"class": c, **s, "segment_f1": scores["segment"][c]["f1"]}
                              for c, s in scores["per_class"].items()])
        summary = {"class": "macro / all", "precision": np.nan, "recall": np.nan, "f1": scores["macro_f1"],
                   "support": scores["frames_evaluated"], "segment_f1": scores["segment"]["macro_f1"]}
        self.per_class.show(pd.concat([table, pd.DataFrame([summary])], ignore_index=True))
        self.confusion.show(folder / "confusion_matrix.png")
        ethograms = sorted(folder.rglob("*.truth_vs_prediction.png"))
        if ethograms:
            self.ethogram.show(ethograms[0])
        self.outputs.select(self.per_class)


# ----------------------------------------------------------------------------------------------- review
class ReviewTab(ttk.Frame):
    """Play a classified video with its predictions, correct its bouts, export labels, retrain."""
    title = "Review"
    SPEEDS = ("0.25", "0.5", "1", "2", "4")
    SPANS = {"whole video": None, "10 min": 18000, "1 min": 1800, "10 s": 300}  # frames at 30 fps

    def __init__(self, app):
        super().__init__(app.notebook)
        self.app, self.session, self.reader, self.job = app, None, None, None
        self.frame_index, self.playing, self.suggestion = 0, False, None
        self.paths = {"video": None, "frames": None, "truth": None, "model": None}
        self.status = tk.StringVar(value="open a video and its predictions (<video>.frames.csv from Inference)")
        self.build_top()
        panes = ttk.PanedWindow(self, orient="horizontal")
        panes.pack(fill="both", expand=True)
        left, right = ttk.Frame(panes), ttk.Frame(panes)
        panes.add(left, weight=3)
        panes.add(right, weight=2)
        self.build_player(left)
        self.build_strip(left)
        self.build_bouts(right)
        ttk.Label(self, textvariable=self.status, padding=(6, 2)).pack(fill="x")
        self.bind_keys()

    # ------------------------------------------------------------------------------------------ layout
    def build_top(self) -> None:
        bar = ttk.Frame(self, padding=4)
        bar.pack(fill="x")
        ttk.Button(bar, text="Open video…", command=self.ask_open).pack(side="left")
        self.last_button = ttk.Button(bar, text="Open last inference", command=self.open_suggestion, state="disabled")
        self.last_button.pack(side="left", padx=4)
        ttk.Button(bar, text="Truth labels…", command=self.ask_truth).pack(side="left", padx=4)
        ttk.Button(bar, text="Model…", command=self.ask_model).pack(side="left")
        self.files = tk.StringVar(value="")
        ttk.Label(bar, textvariable=self.files, foreground="#444").pack(side="left", padx=8)

    def build_player(self, parent) -> None:
        self.screen = ttk.Label(parent, anchor="center", text="no video", background="#202020", foreground="white")
        self.screen.pack(fill="both", expand=True)
        controls = ttk.Frame(parent)
        controls.pack(fill="x")
        for text, command in (("◀ step", lambda: self.step(-1)), ("play / pause", self.toggle_play),
                              ("step ▶", lambda: self.step(1))):
            ttk.Button(controls, text=text, width=11, command=command).pack(side="left")
        ttk.Label(controls, text="speed").pack(side="left", padx=(8, 2))
        self.speed = ttk.Combobox(controls, values=self.SPEEDS, width=5, state="readonly")
        self.speed.set("1")
        self.speed.pack(side="left")
        self.position = tk.StringVar(value="")
        ttk.Label(controls, textvariable=self.position, width=34).pack(side="left", padx=8)
        self.slider = ttk.Scale(parent, from_=0, to=1, orient="horizontal", command=self.on_slider)
        self.slider.pack(fill="x", padx=2)

    def build_strip(self, parent) -> None:
        from matplotlib.backends.backend_tkagg import FigureCanvasTkAgg
        from matplotlib.figure import Figure
        row = ttk.Frame(parent)
        row.pack(fill="x")
        ttk.Label(row, text="ethogram span").pack(side="left", padx=4)
        self.span = ttk.Combobox(row, values=list(self.SPANS), width=12, state="readonly")
        self.span.set("whole video")
        self.span.bind("<<ComboboxSelected>>", lambda e: self.update_marker(force=True))
        self.span.pack(side="left")
        ttk.Label(row, text="upper: prediction, lower: your labels, black: truth; click to seek",
                  foreground="#444").pack(side="left", padx=8)
        self.figure = Figure(figsize=(7.2, 1.9), dpi=90)
        self.ax = self.figure.add_axes([0.12, 0.32, 0.86, 0.64])
        self.ax_p = self.figure.add_axes([0.12, 0.1, 0.86, 0.18], sharex=self.ax)
        self.strip = FigureCanvasTkAgg(self.figure, master=parent)
        self.strip.get_tk_widget().pack(fill="x")
        self.strip.mpl_connect("button_press_event", self.on_strip_click)
        for ax in (self.ax, self.ax_p):
            ax.set_axis_off()  # until a video is open
        self.marker_drawn_at = 0.0

    def build_bouts(self, parent) -> None:
        top = ttk.Frame(parent)
        top.pack(fill="x")
        ttk.Label(top, text="bouts, sorted by").pack(side="left", padx=4)
        self.order = ttk.Combobox(top, values=("time", "class", "least confident first"), width=20, state="readonly")
        self.order.set("time")
        self.order.bind("<<ComboboxSelected>>", lambda e: self.refresh_bouts())
        self.order.pack(side="left")
        columns = ("start", "end", "seconds", "behaviour", "confidence", "reviewed")
        self.tree = ttk.Treeview(parent, columns=columns, show="headings", height=14, selectmode="browse")
        for c, w in zip(columns, (60, 60, 60, 110, 80, 70)):
            self.tree.heading(c, text=c)
            self.tree.column(c, width=w, anchor="w")
        self.tree.pack(fill="both", expand=True, padx=4, pady=4)
        self.tree.bind("<<TreeviewSelect>>", self.on_select)
        edit = ttk.LabelFrame(parent, text="edit the selected bout (keys: 1-9 relabel, c confirm, ctrl+z / ctrl+y)")
        edit.pack(fill="x", padx=4)
        self.label_choice = ttk.Combobox(edit, width=14, state="readonly")
        self.label_choice.grid(row=0, column=0, padx=4, pady=2)
        buttons = (("Relabel", self.relabel), ("Confirm", self.confirm), ("Split here", self.split),
                   ("Start here", self.start_here), ("End here", self.end_here), ("Merge next", self.merge_next),
                   ("Delete", self.delete), ("Undo", self.undo), ("Redo", self.redo))
        for i, (text, command) in enumerate(buttons):
            ttk.Button(edit, text=text, command=command, width=10).grid(row=(i + 1) // 5, column=(i + 1) % 5,
                                                                        padx=2, pady=2)
        results = ttk.Frame(parent)
        results.pack(fill="x", padx=4, pady=4)
        ttk.Button(results, text="Export labels…", command=self.export).pack(side="left")
        ttk.Button(results, text="Agreement", command=self.show_agreement).pack(side="left", padx=4)
        self.retrain_button = ttk.Button(results, text="Retrain with corrections", command=self.retrain)
        self.retrain_button.pack(side="left")
        self.progress = ttk.Progressbar(parent, maximum=100)
        self.progress.pack(fill="x", padx=4)
        self.report = tk.Text(parent, height=9, wrap="word", font=self.app.mono)
        self.report.pack(fill="both", expand=True, padx=4, pady=4)

    def bind_keys(self) -> None:
        keys = {"<space>": self.toggle_play, "<Left>": lambda: self.step(-1), "<Right>": lambda: self.step(1),
                "<Shift-Left>": lambda: self.step(-30), "<Shift-Right>": lambda: self.step(30),
                "<Control-z>": self.undo, "<Control-y>": self.redo, "c": self.confirm}
        keys.update({str(k): (lambda k=k: self.relabel_key(k)) for k in range(1, 10)})
        for sequence, action in keys.items():
            self.app.bind(sequence, lambda e, a=action: self.on_key(e, a), add="+")

    def on_key(self, event, action) -> None:
        typing = isinstance(event.widget, (tk.Entry, ttk.Entry, tk.Text, ttk.Combobox))
        if self.app.notebook.select() == str(self) and self.session is not None and not typing:
            action()

    # ----------------------------------------------------------------------------------------- opening
    def suggest(self, video, frames_csv, model_path) -> None:
        """Inference just finished: one click opens it here."""
        self.suggestion = (video, frames_csv, model_path)
        self.last_button.configure(state="normal")

    def open_suggestion(self) -> None:
        if self.suggestion:
            video, frames_csv, model_path = self.suggestion
            self.open(video, frames_csv, model_path=model_path)

    def ask_open(self) -> None:
        video = filedialog.askopenfilename(title="Video", filetypes=[("video", "*.mp4 *.avi *.mov *.mkv"), ("all", "*")])
        if not video:
            return
        guess = Path(video).with_name(f"{Path(video).stem}.frames.csv")
        frames_csv = str(guess) if guess.is_file() else filedialog.askopenfilename(
            title="Predictions (<video>.frames.csv)", initialdir=str(Path(video).parent),
            filetypes=[("frames CSV", "*.frames.csv"), ("CSV", "*.csv")])
        if frames_csv:
            self.open(video, frames_csv)

    def ask_truth(self) -> None:
        path = filedialog.askopenfilename(title="Ground-truth labels (frame,behavior CSV or BORIS export)")
        if path and self.session is not None:
            self.load_truth(path)
            self.draw_strip()
            self.show_frame(self.frame_index)

    def ask_model(self) -> None:
        path = filedialog.askopenfilename(title="Checkpoint that made the predictions", filetypes=[("checkpoint", "*.pt")])
        if path:
            self.paths["model"] = path
            self.update_files()

    def open(self, video, frames_csv, truth=None, model_path=None) -> None:
        from utils.labels import find_label_file
        from utils.review import ReviewSession
        from utils.video_io import FrameReader
        try:
            session = ReviewSession.from_frames_csv(frames_csv, self.model_classes(frames_csv))
            reader = FrameReader(video)
            table = pd.read_csv(frames_csv)
            restored = session.restore(self.autosave_path(frames_csv))
        except UserError as exc:
            messagebox.showerror("Cannot open", str(exc), parent=self)
            return
        self.close()
        self.session, self.reader, self.table = session, reader, table
        self.paths.update(video=str(video), frames=str(frames_csv), model=model_path or self.paths["model"])
        self.boxes = table[["box_x1", "box_y1", "box_x2", "box_y2"]].to_numpy(np.float32)
        k = len([c for c in table.columns if c.startswith("kp") and c.endswith("_conf")])
        self.keypoints = table[[f"kp{i}_{a}" for i in range(k) for a in ("x", "y", "conf")]].to_numpy(
            np.float32).reshape(len(table), k, 3)
        self.truth = None
        truth = truth or find_label_file(Path(video))
        if truth:
            self.load_truth(truth)
        self.label_choice.configure(values=session.classes)
        self.label_choice.set(session.classes[0] if session.classes else "")
        self.slider.configure(to=max(len(session) - 1, 1))
        self.update_files()
        self.draw_strip()
        self.refresh_bouts()
        self.show_frame(0)
        remember("reviewed_videos", str(video))
        self.status.set(f"{len(session)} frames, {len(session.bouts())} bouts" +
                        ("; your earlier edits were restored" if restored else ""))

    @staticmethod
    def model_classes(frames_csv):
        """The model's classes from the metrics workbook's metadata beside the predictions (None: from the CSV)."""
        import ast
        workbook = Path(str(frames_csv).replace(".frames.csv", ".metrics.xlsx"))
        if not workbook.is_file():
            return None
        meta = pd.read_excel(workbook, sheet_name="metadata")
        value = dict(zip(meta["key"], meta["value"])).get("class_names")
        return list(ast.literal_eval(value)) if isinstance(value, str) else None

    def load_truth(self, path) -> None:
        from utils.labels import load_frame_labels
        try:
            labels = load_frame_labels(path, len(self.session), self.reader.info.fps)
        except UserError as exc:
            messagebox.showerror("Cannot read labels", str(exc), parent=self)
            return
        self.truth = np.array([labels.label_at(f) for f in range(len(self.session))], dtype=object)
        self.paths["truth"] = str(path)
        self.update_files()

    def update_files(self) -> None:
        self.files.set("  |  ".join(f"{k}: {Path(v).name}" for k, v in self.paths.items() if v))

    @staticmethod
    def autosave_path(frames_csv) -> Path:
        return Path(str(frames_csv).replace(".frames.csv", ".review.json"))

    def close(self) -> None:
        self.playing = False
        if self.reader is not None:
            self.reader.close()
            self.reader = None

    # ----------------------------------------------------------------------------------------- playing
    def show_frame(self, index: int) -> None:
        from PIL import Image, ImageTk

        from utils.outputs import draw_review
        if self.session is None:
            return
        index = int(np.clip(index, 0, len(self.session) - 1))
        frame = self.reader.read(index)
        if frame is None:
            self.playing = False
            return
        self.frame_index = index
        label = self.session.label_names()[index]
        predicted = self.session.predicted[index]
        text = f"model: {predicted} {self.session.confidence[index]:.2f}"
        second = f"yours: {label or '-'}" + (f" | truth: {self.truth[index] or '-'}" if self.truth is not None else "")
        draw_review(frame, self.boxes[index], self.keypoints[index], text, second)
        image = Image.fromarray(frame[:, :, ::-1])
        width, height = max(self.screen.winfo_width(), 320), max(self.screen.winfo_height(), 240)
        image.thumbnail((width - 4, height - 4))
        self.photo = ImageTk.PhotoImage(image)
        self.screen.configure(image=self.photo, text="")
        self._slider_busy = True
        self.slider.set(index)
        self._slider_busy = False
        fps = self.reader.info.fps
        self.position.set(f"frame {index} / {len(self.session) - 1}   {index / fps:.2f} s")
        self.update_marker()

    def on_slider(self, value) -> None:
        if not getattr(self, "_slider_busy", False) and self.session is not None:
            self.show_frame(int(float(value)))

    def step(self, delta: int) -> None:
        self.playing = False
        self.show_frame(self.frame_index + delta)

    def seek(self, index: int) -> None:
        self.show_frame(index)

    def toggle_play(self) -> None:
        if self.session is None:
            return
        self.playing = not self.playing
        if self.playing:
            self._play_started = (time.monotonic(), self.frame_index)
            self.after(1, self._tick)

    def _tick(self) -> None:
        """Keep the video's frame rate: the frame due now is shown (frames are skipped if drawing lags)."""
        if not self.playing or self.session is None:
            return
        started, first = self._play_started
        due = first + int((time.monotonic() - started) * self.reader.info.fps * float(self.speed.get()))
        if due >= len(self.session):
            self.playing = False
            return
        if due != self.frame_index:
            self.show_frame(due)
        self.after(max(int(1000 / (self.reader.info.fps * float(self.speed.get())) / 2), 1), self._tick)

    # ---------------------------------------------------------------------------------------- ethogram
    def draw_strip(self) -> None:
        from utils.plots import ethogram_bars
        self.ax.clear()
        self.ax_p.clear()
        for ax in (self.ax, self.ax_p):
            ax.set_axis_on()
        classes = self.session.classes
        ethogram_bars(self.ax, self.session.predicted, classes, 1.0, (-0.45, 0.45))
        ethogram_bars(self.ax, self.session.label_names(), classes, 1.0, (0.0, 0.4), alpha=0.6)
        if self.truth is not None:
            ethogram_bars(self.ax, self.truth, classes, 1.0, (0.4, 0.08), color="black")
        self.ax.set_yticks(range(len(classes)), classes, fontsize=8)
        self.ax.set_ylim(len(classes) - 0.5, -0.5)
        self.ax.tick_params(labelbottom=False)
        self.ax_p.plot(np.arange(len(self.session)), self.session.confidence, lw=0.6, color="black")
        self.ax_p.set_ylim(0, 1)
        self.ax_p.set_yticks([0, 1], ["0", "1"], fontsize=7)
        self.ax_p.tick_params(axis="x", labelsize=7)
        self.markers = [self.ax.axvline(self.frame_index, color="red", lw=1.2),
                        self.ax_p.axvline(self.frame_index, color="red", lw=1.2)]
        self.update_marker(force=True)

    def update_marker(self, force: bool = False) -> None:
        """Move the current-frame marker; redraws are throttled so playback keeps its frame rate."""
        if self.session is None or not hasattr(self, "markers"):
            return
        now = time.monotonic()
        if not force and now - self.marker_drawn_at < 0.25:
            return
        for marker in self.markers:
            marker.set_xdata([self.frame_index, self.frame_index])
        span = self.SPANS[self.span.get()]
        if span is None:
            self.ax.set_xlim(0, len(self.session))
        else:
            start = max(0, min(self.frame_index - span // 2, len(self.session) - span))
            self.ax.set_xlim(start, start + span)
        self.strip.draw_idle()
        self.marker_drawn_at = now

    def on_strip_click(self, event) -> None:
        if event.xdata is not None and self.session is not None:
            self.playing = False
            self.seek(int(round(event.xdata)))

    # -------------------------------------------------------------------------------------------- bouts
    def refresh_bouts(self) -> None:
        if self.session is None:
            return
        bouts = self.session.bouts()
        order = self.order.get()
        if order == "class":
            bouts = sorted(bouts, key=lambda b: (b.label or "~", b.start))
        elif order == "least confident first":
            bouts = sorted(bouts, key=lambda b: (b.reviewed, b.confidence))
        fps = self.reader.info.fps
        self.tree.delete(*self.tree.get_children())
        for b in bouts:
            self.tree.insert("", "end", iid=str(b.start), values=(b.start, b.end, f"{b.frames / fps:.2f}",
                                                                   b.label or "(unlabelled)", f"{b.confidence:.2f}",
                                                                   "yes" if b.reviewed else ""))

    def on_select(self, _event=None) -> None:
        selected = self.tree.selection()
        if selected and self.session is not None and not getattr(self, "_selecting", False):
            start = int(selected[0])
            if not self.session.bout_at(self.frame_index).start == start:
                self.seek(start)

    def current_bout(self):
        return self.session.bout_at(self.frame_index)

    def edit(self, operation) -> None:
        """Run one edit on the session, save it at once (a crash loses nothing), redraw."""
        if self.session is None:
            return
        try:
            operation()
        except UserError as exc:
            self.status.set(f"⚠ {exc}")
            return
        self.session.save(self.autosave_path(self.paths["frames"]))
        self.refresh_bouts()
        self.draw_strip()
        self.show_frame(self.frame_index)
        bout = self.current_bout()
        self.status.set(f"bout {bout.start}-{bout.end}: {bout.label or '(unlabelled)'}; saved to "
                        f"{self.autosave_path(self.paths['frames']).name}")

    def relabel(self) -> None:
        self.edit(lambda: self.session.relabel(self.current_bout(), self.label_choice.get()))

    def relabel_key(self, number: int) -> None:
        if number <= len(self.session.classes):
            self.label_choice.set(self.session.classes[number - 1])
            self.relabel()

    def confirm(self) -> None:
        self.edit(lambda: self.session.confirm(self.current_bout()))

    def split(self) -> None:
        self.edit(lambda: self.session.split(self.frame_index, self.label_choice.get()))

    def start_here(self) -> None:
        """The bout under the selection in the list starts at the current frame."""
        self.edit(lambda: self.session.move_start(self.selected_bout(), self.frame_index))

    def end_here(self) -> None:
        self.edit(lambda: self.session.move_end(self.selected_bout(), self.frame_index))

    def selected_bout(self):
        selected = self.tree.selection()
        if not selected:
            raise UserError("select the bout in the list first, then move to the frame where it should start or end")
        return self.session.bout_at(int(selected[0]))

    def merge_next(self) -> None:
        self.edit(lambda: self.session.merge_next(self.current_bout()))

    def delete(self) -> None:
        self.edit(lambda: self.session.delete(self.current_bout()))

    def undo(self) -> None:
        self.edit(lambda: self.session.undo() or self.status.set("nothing to undo"))

    def redo(self) -> None:
        self.edit(lambda: self.session.redo() or self.status.set("nothing to redo"))

    # ----------------------------------------------------------------------------------------- results
    def corrected_folder(self) -> Path:
        return Path(self.paths["frames"]).parent / "corrected"

    def export(self, path=None) -> Path:
        """The corrected labels as <stem>.csv beside the video, or in a folder of corrected videos (the video is
        linked there too): a dataset preprocessing reads as it is."""
        if self.session is None:
            return None
        video = Path(self.paths["video"])
        default = self.corrected_folder() / f"{video.stem}.csv"
        path = Path(path or filedialog.asksaveasfilename(initialdir=str(default.parent), initialfile=default.name,
                                                         defaultextension=".csv") or "")
        if not path.name:
            return None
        self.session.export_csv(path)
        beside = path.with_name(video.stem + video.suffix)
        if path.stem == video.stem and not beside.exists():
            try:
                beside.symlink_to(video.resolve())
            except OSError:
                import shutil
                shutil.copy2(video, beside)
        self.status.set(f"exported {int((self.session.codes >= 0).sum())} labelled frames to {path}")
        return path

    def show_agreement(self) -> dict:
        if self.session is None:
            return None
        try:
            result = self.session.agreement()
        except UserError as exc:
            self.status.set(f"⚠ {exc}")
            return None
        lines = [f"model vs your labels over {result['frames']} labelled frames ({result['reviewed_frames']} "
                 f"reviewed by you)", f"per-frame macro-F1 {result['macro_f1']:.3f}, accuracy {result['accuracy']:.3f}",
                 f"{'behaviour':<14}{'precision':>10}{'recall':>8}{'F1':>7}{'frames':>8}"]
        lines += [f"{c:<14}{s['precision']:>10.3f}{s['recall']:>8.3f}{s['f1']:>7.3f}{s['support']:>8}"
                  for c, s in result["per_class"].items()]
        self.report.delete("1.0", "end")
        self.report.insert("1.0", "\n".join(lines))
        return result

    # ----------------------------------------------------------------------------------------- retrain
    def retrain(self) -> None:
        """Preprocess every corrected video (the checkpoint's own settings) and train from the current model,
        as one job; afterwards the new model's validation scores are shown next to the old one's."""
        if self.session is None or self.app.job_tab is not None:
            self.status.set("⚠ open a reviewed video first, and wait for any running job")
            return
        if not self.paths["model"]:
            self.ask_model()
            if not self.paths["model"]:
                return
        try:
            self.job_values = self.retrain_plan()
        except UserError as exc:
            messagebox.showerror("Cannot retrain", str(exc), parent=self)
            return
        plan = self.job_values
        self.job = Job([script_command("prepare_sequences_from_yolo.py", plan["prepare_config"]),
                        script_command("train_behavior_lstm.py", plan["train_config"])],
                       plan["folder"] / "retrain.log", plan["folder"] / "runs" / plan["run_name"] / "STOP").start()
        self.report.delete("1.0", "end")
        self.retrain_button.configure(state="disabled")
        self.app.job_started(self)

    def retrain_plan(self) -> dict:
        from utils.checkpoint import load_checkpoint
        self.export(self.corrected_folder() / f"{Path(self.paths['video']).stem}.csv")
        checkpoint = load_checkpoint(self.paths["model"])
        sections = recorded_sections(checkpoint)
        folder = self.corrected_folder().parent / "retrain"
        videos = len(list(self.corrected_folder().glob("*.csv")))
        run_name = datetime.now().strftime("retrain_%Y%m%d_%H%M%S")
        sections["preprocessing"].update(
            dataset_root=str(self.corrected_folder()), output_root=str(folder / "prepared"), manifest_path=None,
            dataset_layout="labelled_videos", skip_existing=False, save_frame_crops=False,
            # few corrected videos: validation windows come from the same videos (leaky, said in the log)
            split_strategy="video" if videos >= 3 else "window", train_ratio=0.8, val_ratio=0.2, test_ratio=0.0)
        sections["model"]["pretrained_backbone"] = False  # the weights come from init_from
        sections["training"].update(manifest_path=str(folder / "prepared" / "sequence_manifest.json"),
                                    output_dir=str(folder / "runs"), run_name=run_name, init_from=self.paths["model"])
        write_config(folder / "retrain_preprocessing.yaml", {"preprocessing": sections["preprocessing"]})
        write_config(folder / "retrain_training.yaml", {k: sections[k] for k in ("augmentation", "model", "training")})
        return {"folder": folder, "run_name": run_name, "prepare_config": folder / "retrain_preprocessing.yaml",
                "train_config": folder / "retrain_training.yaml", "old": checkpoint.get("best_metric")}

    def poll(self) -> bool:
        lines = self.job.poll()
        for line in lines:
            progress = parse_progress(line)
            if progress is not None:
                self.progress.configure(value=100 * progress.fraction)
                self.status.set(f"retraining: {progress.desc} {progress.n}/{progress.total or '?'}, elapsed "
                                f"{format_seconds(self.job.elapsed)}, ETA {format_seconds(progress.eta_seconds)}")
            elif line.strip():
                self.report.insert("end", line + "\n")
                self.report.see("end")
        if self.job.running:
            return False
        self.job.poll(max_lines=10 ** 9)
        self.retrain_button.configure(state="normal")
        self.show_retrain_result()
        return True

    def show_retrain_result(self) -> None:
        from utils.checkpoint import load_checkpoint
        plan = self.job_values
        new_path = plan["folder"] / "runs" / plan["run_name"] / "best_model_macro_f1.pt"
        if self.job.returncode != 0 or not new_path.is_file():
            message = error_message(self.job.lines) or f"exit {self.job.returncode}"
            self.status.set(f"retraining {'cancelled' if self.job.cancelled else 'failed'}: {message}")
            if not self.job.cancelled:
                show_error_dialog(self, "Retraining failed", message, self.job.log_path)
            return
        new, old = load_checkpoint(new_path).get("best_metric") or {}, plan["old"] or {}
        fmt = lambda d, k: f"{d[k]:.3f}" if d.get(k) is not None else "-"  # noqa: E731
        self.report.delete("1.0", "end")
        self.report.insert("1.0", f"validation     old model   new model\n"
                                  f"accuracy       {fmt(old, 'acc'):>9}   {fmt(new, 'acc'):>9}\n"
                                  f"macro-F1       {fmt(old, 'macro_f1'):>9}   {fmt(new, 'macro_f1'):>9}\n"
                                  f"(old: its own validation split; new: windows of the corrected videos)\n"
                                  f"new model: {new_path}")
        self.paths["model"] = str(new_path)
        self.app.tabs["Inference"].form.set("inference", "model_path", str(new_path))
        self.update_files()
        self.status.set(f"retrained in {format_seconds(self.job.elapsed)}: {new_path}")


# ------------------------------------------------------------------------------------------------- app
class BehaviorScopeApp(tk.Tk):
    TABS = (PreprocessTab, TrainTab, InferenceTab, EvaluateTab, TrackTab, DetectorTab)

    def __init__(self, config_path=None):
        super().__init__()
        self.title("BehaviorScope")
        self.geometry("1340x740")
        self.minsize(1000, 600)
        for name in ("TkDefaultFont", "TkTextFont", "TkMenuFont", "TkHeadingFont"):
            tkfont.nametofont(name).configure(size=10)
        self.mono = tkfont.Font(family="DejaVu Sans Mono", size=9)
        style = ttk.Style(self)
        if "clam" in style.theme_names():
            style.theme_use("clam")
        style.configure("Invalid.TEntry", foreground="#c00000", fieldbackground="#ffe8e8")
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


def recorded_sections(checkpoint: dict) -> dict:
    """The settings a checkpoint was trained with, by section (older flat configs: by key)."""
    config = checkpoint.get("config") or {}
    out = {}
    for cls in (AugmentConfig, ModelSettings, TrainingConfig):
        section = section_name(cls)
        flat = config.get(section, config)
        out[section] = settings_dict(from_recorded(cls, flat, "checkpoint"))
    out["preprocessing"] = settings_dict(from_recorded(PreprocessingConfig, checkpoint["preprocessing"], "checkpoint"))
    return out


def main(args):
    if args.config:
        read_yaml_layer(args.config)  # a bad file is a one-line error before any window opens
    review = review_paths(args) if args.review_video else None  # checked before any window opens
    app = BehaviorScopeApp(args.config)
    if review:
        app.notebook.select(app.tabs["Review"])
        app.tabs["Review"].open(*review, model_path=args.review_model)
    app.mainloop()


def review_paths(args) -> tuple:
    """(video, predictions CSV) for --review_video: the Review tab opens on them (what demo.py prints at its end)."""
    video = Path(args.review_video)
    frames_csv = Path(args.review_frames) if args.review_frames else video.with_name(f"{video.stem}.frames.csv")
    for path in (video, frames_csv):
        if not path.is_file():
            raise UserError(f"{path} does not exist; --review_video needs the video and its <stem>.frames.csv from "
                            f"inference (--review_frames)")
    return video, frames_csv


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    run_cli(main, get_args_parser())
