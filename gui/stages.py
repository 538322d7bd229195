"""The stage tabs: each runs one stage script on the settings of its form and shows its results."""
import json
from datetime import datetime
from pathlib import Path
import tkinter as tk
from tkinter import filedialog, messagebox, ttk

import numpy as np
import pandas as pd
import yaml

from gui.jobs import JobView
from gui.state import remember
from gui.widgets import ImagePane, SettingsForm, TablePane, folder_entry, with_scrollbars, write_config
from training.recipes import FIRST, PRETRAINED_LR_SCALE, RECIPES, recipe_titles
from utils.config import section_name, section_options, settings_that_apply
from utils.errors import UserError
from utils.jobs import Job, in_dashboard_terms, script_command
from utils.readers.pose_io import recording_name
from utils.schema import (SECTIONS, TRACKING_SETTINGS, AugmentConfig, DetectorTrainingConfig, EmbeddingConfig,
                          InferenceConfig, ModelSettings, PreprocessingConfig, PretrainConfig, TrainingConfig)


class StageTab(ttk.Frame):
    """Form on the left; log and results on the right; Run / Cancel, progress, elapsed and ETA below."""
    title, script, classes, required = "", "", (), ()
    only = None  # {section class: names} for a stage that reads a few settings of a section

    def __init__(self, app, config_path=None):
        super().__init__(app.notebook)
        self.app, self.job_folder = app, None
        self.status = tk.StringVar(value="ready")
        panes = ttk.PanedWindow(self, orient="horizontal")
        panes.pack(fill="both", expand=True)
        left = ttk.Frame(panes)
        self.build_inputs(left)
        self.form = SettingsForm(left, self.classes, self.status, config_path, self.only, self.required)
        self.form.pack(fill="both", expand=True)
        panes.add(left, weight=3)
        self.outputs = ttk.Notebook(panes)
        log_frame = ttk.Frame(self.outputs)
        self.log = tk.Text(log_frame, height=10, width=50, wrap="none", font=app.mono)
        with_scrollbars(self.log)
        self.outputs.add(log_frame, text="Log")
        self.build_results(self.outputs)
        panes.add(self.outputs, weight=2)
        self.build_controls()
        self.view = JobView(self, self.title, self.log, self.progress, self.status)

    @property
    def last_run_key(self) -> str:
        """Where the dashboard remembers this tab's last run, whose settings the next session starts from."""
        return f"last_run_{self.title.lower()}"

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
        ttk.Label(bar, textvariable=self.status, width=30).pack(side="left", fill="x", expand=True)

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
        """The form's values, checked before anything runs or is written: required fields filled, input files
        and folders there (relative paths: from the folder the dashboard was started in, as the stages see them)."""
        values = self.form.values()
        for section, settings in values.items():
            options = section_options(SECTIONS[section]) if section in SECTIONS else {}
            for name in self.required:
                if name in settings and settings[name] in (None, ""):
                    raise UserError(f"{options[name].label} ({name}) is required: fill it in the {section} section")
            for name, opt in options.items():
                if opt.must_exist and settings.get(name) and not Path(settings[name]).exists():
                    raise UserError(f"{opt.label} ({name}): {settings[name]} does not exist (looked for in "
                                    f"{Path.cwd()}); choose an existing file or folder with its … button")
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
            remember(self.last_run_key, str(config_path.resolve()), keep=1)
            commands = self.commands(config_path, values)
        except (UserError, OSError) as exc:
            messagebox.showerror("Cannot run", in_dashboard_terms(str(exc)), parent=self)
            return
        self.job_folder, self.job_values = folder, values
        self.view.start(Job(commands, folder / f"gui_{self.title.lower()}.log", self.stop_file(values)).start())
        self.run_button.configure(state="disabled")
        self.cancel_button.configure(state="normal")
        self.app.job_started(self)

    @property
    def job(self):
        return self.view.job

    def cancel(self) -> None:
        self.view.cancel()

    def poll(self) -> bool:
        """Called by the app every POLL_MS while this tab's job runs; True when the job has ended."""
        ended = self.view.poll()
        if ended:
            self.run_button.configure(state="normal")
            self.cancel_button.configure(state="disabled")
        self.show_results(self.job_values, finished=ended)
        return ended


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


class RunFolderTab(StageTab):
    """A stage that writes a run folder (<output_dir>/<run_name>/, named before it starts so its results can be
    shown and its stop file found) with training curves."""

    def validated_values(self) -> dict:
        if not self.form.get("training", "run_name"):  # the run folder must be known to show results and stop
            self.form.set("training", "run_name", datetime.now().strftime("behavior_%Y%m%d_%H%M%S"))
        return super().validated_values()

    def run_folder(self, values: dict) -> Path:
        return Path(values["training"]["output_dir"]) / values["training"]["run_name"]

    def stop_file(self, values: dict):
        return self.run_folder(values) / values["training"]["stop_file"]


class PretrainTab(RunFolderTab):
    """Self-supervised pretraining of a dense model on recordings without labels (pretrain_pose.py); when it ends the
    Train tab starts from its model (init_from)."""
    title, script = "Pretrain", "pretrain_pose.py"
    classes, required = (PretrainConfig, TrainingConfig, ModelSettings, AugmentConfig), ("manifest_path",)
    only = {PretrainConfig: ("pose_dir",),
            TrainingConfig: ("manifest_path", "output_dir", "run_name", "pose_features", "min_keypoint_conf",
                             "track_smoothing_s", "epochs", "batch_size", "lr", "weight_decay", "mask_ratio",
                             "mask_span", "device", "seed", "stop_file"),
            ModelSettings: ("classifier", "use_pose", "use_box_motion", "use_sensors", "dense_hidden", "dense_layers",
                            "dense_stages", "dense_chunk", "dropout", "feature_dropout", "feature_shift",
                            "input_scaling", "attention_heads"),
            AugmentConfig: settings_that_apply(AugmentConfig, "input", "body_features")}

    def __init__(self, app, config_path=None):
        super().__init__(app, config_path)
        if not config_path:
            self.form.set("model", "classifier", "mstcn")
            self.form.set("model", "use_pose", True)

    def build_results(self, notebook) -> None:
        self.curves = ImagePane(notebook)
        notebook.add(self.curves, text="Curves")

    def show_results(self, values: dict, finished: bool) -> None:
        folder = self.run_folder(values)
        self.curves.show(folder / "training_curves.png")
        if finished and (folder / "best_model.pt").is_file():
            tab = self.app.tabs["Train"]
            tab.form.set("training", "init_from", str(folder / "best_model.pt"))
            tab.form.set("training", "init_lr_scale", PRETRAINED_LR_SCALE)
            for name in ("classifier", "use_pose", "dense_hidden", "dense_layers", "dense_stages", "dense_chunk"):
                tab.form.set("model", name, values["model"][name])
            tab.recipe.set("")  # no recipe describes these settings any more
            tab.recipe_why.set(f"fine-tunes the pretrained {values['model']['classifier']} of {folder}, its "
                               f"pretrained layers at {PRETRAINED_LR_SCALE:g} x the learning rate")
            self.outputs.select(self.curves)


class TrainTab(RunFolderTab):
    """Training; starts from a recipe (training/recipes.py): the guide's first model unless an earlier run's
    settings are remembered."""
    title, script = "Train", "train_behavior_lstm.py"
    classes, required = (TrainingConfig, ModelSettings, AugmentConfig), ("manifest_path",)

    def __init__(self, app, config_path=None):
        super().__init__(app, config_path)
        if not config_path:
            self.apply_recipe(FIRST)

    def build_inputs(self, parent) -> None:
        row = ttk.Frame(parent, padding=(4, 4, 4, 0))
        row.pack(fill="x")
        ttk.Label(row, text="Start from").pack(side="left", padx=(2, 4))
        self.recipe = ttk.Combobox(row, values=list(recipe_titles()), state="readonly", width=40)
        self.recipe.pack(side="left")
        self.recipe.bind("<<ComboboxSelected>>", lambda e: self.apply_recipe(recipe_titles()[self.recipe.get()]))
        self.recipe_why = tk.StringVar()
        ttk.Label(parent, textvariable=self.recipe_why, foreground="#555", wraplength=720, padding=(8, 2)
                  ).pack(fill="x")

    def apply_recipe(self, name: str) -> None:
        """The recipe's settings into the form (the others keep their values)."""
        recipe = RECIPES.get(name)
        for setting, value in recipe.settings.items():
            section = next(section_name(c) for c in self.classes if setting in section_options(c))
            self.form.set(section, setting, value)
        self.recipe.set(recipe.title)
        self.recipe_why.set(f"{recipe.why}  ({' '.join(recipe.flags())})")

    def build_results(self, notebook) -> None:
        self.curves, self.per_class = ImagePane(notebook), TablePane(notebook)
        notebook.add(self.curves, text="Curves")
        notebook.add(self.per_class, text="Per class")  # of the best macro-F1 epoch
        self.confusion = TablePane(notebook)
        notebook.add(self.confusion, text="Confusion")

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
        ttk.Label(box, text="Recording *").grid(row=0, column=0, sticky="w", padx=6)
        ttk.Entry(box, textvariable=self.video_path, width=48).grid(row=0, column=1, sticky="we", pady=2)
        ttk.Button(box, text="…", width=2, command=lambda: self.video_path.set(
            filedialog.askopenfilename() or self.video_path.get())).grid(row=0, column=2, padx=4)
        folder_entry(box, "Output folder", self.output_dir, 1)

    def build_results(self, notebook) -> None:
        self.trajectory, self.speed, self.summary = ImagePane(notebook), ImagePane(notebook), TablePane(notebook)
        notebook.add(self.trajectory, text="Trajectory")
        notebook.add(self.speed, text="Speed")
        notebook.add(self.summary, text="Summary")

    def run_folder(self, values: dict) -> Path:
        source = Path(self.video_path.get())
        if not self.video_path.get() or not source.exists():
            raise UserError(f"Recording {self.video_path.get()!r} does not exist: pick a video, pose file or folder")
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
        folder_entry(self.folder_box, "Videos folder *", self.input_dir, 0)
        folder_entry(self.folder_box, "Output folder *", self.output_root, 1)

    def folder_args(self) -> list:
        if not self.input_dir.get() or not self.output_root.get():
            raise UserError("Videos folder and Output folder are required: pick the folder of videos and an output "
                            "folder")
        return ["--input_dir", self.input_dir.get(), "--output_root", self.output_root.get()]

    def run_folder(self, values: dict) -> Path:
        return Path(self.folder_args()[3])

    def commands(self, config_path: Path, values: dict) -> list:
        return [script_command(self.script, config_path, *self.folder_args())]


class InferenceTab(FolderRunTab):
    title, folder_title = "Inference", "folder (batch) mode: every video under the videos folder"

    def build_inputs(self, parent) -> None:
        self.mode = tk.StringVar(value="video")
        modes = ttk.Frame(parent)
        modes.pack(fill="x", padx=4, pady=(4, 0))
        ttk.Radiobutton(modes, text="one video (Video, below)", value="video", variable=self.mode).pack(side="left")
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
            raise UserError("Video is required in one-video mode: pick the video to classify")
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


class DiscoverTab(FolderRunTab):
    """Embeddings, maps and behaviour groups of a folder of recordings (embed_behavior.py); when it ends the Review
    tab offers the first recording with video, its groups as the classes to name."""
    title, script = "Discover", "embed_behavior.py"
    folder_title = "recordings to map (videos, or pose files for a model trained on them)"
    classes = (InferenceConfig, EmbeddingConfig)
    only = {InferenceConfig: ("model_path", "yolo_weights", "device", "window_stride", "pose_fps", "keypoint_map",
                              "sensor_rate", "sensor_offset_s")}

    def build_results(self, notebook) -> None:
        self.map, self.groups = ImagePane(notebook), TablePane(notebook)
        notebook.add(self.map, text="Map")
        notebook.add(self.groups, text="Groups")

    def show_results(self, values: dict, finished: bool) -> None:
        folder = self.run_folder(values)
        if not finished or not (folder / "embedding_report.json").is_file():
            return
        report = json.loads((folder / "embedding_report.json").read_text())
        self.map.show(folder / report["maps"][-1])
        if (folder / "groups.csv").is_file():
            self.groups.show(pd.read_csv(folder / "groups.csv"))
        self.outputs.select(self.map)
        video = next((r for r in report.get("recordings", []) if r["has_video"]), None)
        if video is not None:
            self.app.tabs["Review"].suggest(video["path"], folder / video["groups_frames"],
                                            values["inference"]["model_path"])
