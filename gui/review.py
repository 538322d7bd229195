"""The Review tab: play a classified video with its predictions, correct its bouts, export labels, retrain."""
import time
from pathlib import Path
import tkinter as tk
from tkinter import filedialog, messagebox, ttk

import numpy as np
import pandas as pd

from gui.jobs import JobView
from gui.state import remember
from gui.widgets import replace_text, with_scrollbars
from training.retrain import WORSE_BY, original_manifest_of, plan_retrain
from utils.checkpoint import load_checkpoint
from utils.errors import UserError
from utils.jobs import Job, in_dashboard_terms


EDIT_COLUMNS = 4  # the edit buttons' grid: four fit beside the video on a 1366 px screen
KEYS_TAG = "ReviewShortcuts"  # first in every widget's bindtags: the Review tab's keys before any widget's own


def put_keys_first(widget) -> None:
    """The review shortcuts before the widget's own bindings, in it and every widget inside it."""
    tags = widget.bindtags()
    if KEYS_TAG not in tags:
        widget.bindtags((KEYS_TAG, *tags))
    for child in widget.winfo_children():
        put_keys_first(child)


class ReviewTab(ttk.Frame):
    """Play a classified video with its predictions, correct its bouts, export labels, retrain."""
    title = "Review"
    SPEEDS = ("0.25", "0.5", "1", "2", "4")
    SPANS = {"whole video": None, "10 min": 18000, "1 min": 1800, "10 s": 300}  # frames at 30 fps

    def __init__(self, app):
        super().__init__(app.notebook)
        self.app, self.session, self.reader, self.plan = app, None, None, None
        self.frame_index, self.playing, self.suggestion = 0, False, None
        self.queue, self.queue_path, self.queue_next = None, None, 0
        self.paths = {"video": None, "frames": None, "truth": None, "model": None}
        self.status = tk.StringVar(value="open a video and its predictions (<video>.frames.csv from Inference)")
        self.build_top()
        # packed before the panes: on a short screen the panes shrink, the status line stays
        ttk.Label(self, textvariable=self.status, padding=(6, 2)).pack(side="bottom", fill="x")
        panes = ttk.PanedWindow(self, orient="horizontal")
        panes.pack(fill="both", expand=True)
        left, right = ttk.Frame(panes), ttk.Frame(panes)
        panes.add(left, weight=3)
        panes.add(right, weight=2)
        self.build_player(left)
        self.build_strip(left)
        self.build_bouts(right)
        self.view = JobView(self, "Retraining", self.report, self.progress, self.status)
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
        ttk.Button(bar, text="Queue…", command=self.ask_queue).pack(side="left", padx=4)
        self.files = tk.StringVar(value="")
        ttk.Label(bar, textvariable=self.files, foreground="#444").pack(side="left", padx=8)

    def build_player(self, parent) -> None:
        self.screen = ttk.Label(parent, anchor="center", text="no video", background="#202020", foreground="white")
        self.screen.pack(fill="both", expand=True)
        controls = ttk.Frame(parent)
        controls.pack(fill="x")
        for text, command in (("◀ step", lambda: self.step(-1)), ("play / pause", self.toggle_play),
                              ("step ▶", lambda: self.step(1))):
            ttk.Button(controls, text=text, width=10, command=command).pack(side="left")
        ttk.Label(controls, text="speed").pack(side="left", padx=(8, 2))
        self.speed = ttk.Combobox(controls, values=self.SPEEDS, width=5, state="readonly")
        self.speed.set("1")
        self.speed.pack(side="left")
        self.position = tk.StringVar(value="")
        ttk.Label(controls, textvariable=self.position, width=24).pack(side="left", padx=8)
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
        ttk.Label(row, text="upper: model, lower: yours, black: truth; click to seek",
                  foreground="#444").pack(side="left", padx=8)
        self.figure = Figure(figsize=(6.4, 1.9), dpi=90)
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
        self.tree = ttk.Treeview(parent, columns=columns, show="headings", height=10, selectmode="browse")
        for c, w in zip(columns, (50, 50, 60, 100, 78, 66)):
            self.tree.heading(c, text=c)
            self.tree.column(c, width=w, anchor="w")
        self.tree.pack(fill="both", expand=True, padx=4, pady=4)
        self.tree.bind("<<TreeviewSelect>>", self.on_select)
        edit = ttk.LabelFrame(parent, text="edit the bout at the frame; [ ] move the selected one (? lists every key)")
        edit.pack(fill="x", padx=4)
        self.label_choice = ttk.Combobox(edit, width=14, state="readonly")
        self.label_choice.grid(row=0, column=0, padx=4, pady=2)
        buttons = (("Relabel", self.relabel), ("New behaviour…", self.ask_new_class), ("Confirm", self.confirm),
                   ("Split here", self.split),
                   ("Start here", self.start_here), ("End here", self.end_here), ("Merge next", self.merge_next),
                   ("Delete", self.delete), ("Undo", self.undo), ("Redo", self.redo), ("Keys…", self.show_keys))
        for i, (text, command) in enumerate(buttons):
            ttk.Button(edit, text=text, command=command, width=max(10, len(text))).grid(
                row=(i + 1) // EDIT_COLUMNS, column=(i + 1) % EDIT_COLUMNS, padx=2, pady=2)
        results = ttk.Frame(parent)
        results.pack(fill="x", padx=4, pady=4)
        ttk.Button(results, text="Export labels…", command=self.export).pack(side="left")
        ttk.Button(results, text="Agreement", command=self.show_agreement).pack(side="left", padx=4)
        self.retrain_button = ttk.Button(results, text="Retrain with corrections", command=self.retrain)
        self.retrain_button.pack(side="left")
        self.cancel_button = ttk.Button(results, text="Cancel retrain", state="disabled",
                                        command=lambda: self.view.cancel())
        self.cancel_button.pack(side="left", padx=4)
        self.progress = ttk.Progressbar(parent, maximum=100)
        self.progress.pack(fill="x", padx=4)
        report = ttk.Frame(parent)
        report.pack(fill="both", expand=True, padx=4, pady=4)
        # read-only, so that the tab's keys still act after a click in it
        self.report = tk.Text(report, height=7, width=60, wrap="none", font=self.app.mono, state="disabled")
        with_scrollbars(self.report)

    def shortcuts(self) -> list:
        """(key names as shown, Tk sequences, what it does, action): the Review tab's keys, like BORIS's and
        DeepEthogram's; bound once (focus-independent, see on_key), listed by show_keys and in the user guide."""
        return [
            ("Space", ("<space>",), "play / pause", self.toggle_play),
            ("← →", ("<Left>", "<Right>"), "one frame back / forward", (lambda: self.step(-1), lambda: self.step(1))),
            ("Shift+← →", ("<Shift-Left>", "<Shift-Right>"), "one second back / forward",
             (lambda: self.step(-self.second()), lambda: self.step(self.second()))),
            ("↑ ↓", ("<Up>", "<Down>"), "previous / next bout (selects it)",
             (lambda: self.goto_bout(-1), lambda: self.goto_bout(1))),
            ("- +", ("<minus>", "<plus>"), "slower / faster playback", (lambda: self.faster(-1), lambda: self.faster(1))),
            ("1-9", tuple(str(k) for k in range(1, 10)), "relabel the bout at the frame (the behaviours' order)",
             tuple((lambda k=k: self.relabel_key(k)) for k in range(1, 10))),
            ("c", ("c",), "confirm the bout at the frame (reviewed, label kept)", self.confirm),
            ("[", ("<bracketleft>",), "the selected bout starts at this frame", self.start_here),
            ("]", ("<bracketright>",), "the selected bout ends at this frame", self.end_here),
            ("s", ("s",), "split here: from this frame to the bout's end gets the chosen label", self.split),
            ("m", ("m",), "merge the bout with the next bout of its behaviour", self.merge_next),
            ("Delete", ("<Delete>",), "delete the bout's label: its frames are left out of the labels", self.delete),
            ("Ctrl+Z Ctrl+Y", ("<Control-z>", "<Control-y>"), "undo / redo", (self.undo, self.redo)),
            ("n", ("n",), "the next bout of the review queue (Queue…: suggest_review.py's review_queue.csv)",
             self.next_in_queue),
            ("?", ("<question>",), "this list", self.show_keys),
        ]

    def bind_keys(self) -> None:
        for _, sequences, _, actions in self.shortcuts():
            actions = actions if isinstance(actions, tuple) else (actions,) * len(sequences)
            for sequence, action in zip(sequences, actions):
                self.app.bind_class(KEYS_TAG, sequence, lambda e, a=action: self.on_key(e, a))
        self.after_idle(lambda: put_keys_first(self.app))

    def show_keys(self) -> str:
        text = "\n".join(f"{keys:<15}{what}" for keys, _, what, _ in self.shortcuts())
        replace_text(self.report, "keys of the Review tab (whatever has the focus, except while typing)\n" + text)
        return text

    def on_key(self, event, action):
        """A shortcut acts whatever has the focus (a button's Space, the bout list's arrows), except while typing;
        "break" keeps the focused widget from acting on the key as well."""
        typing = (isinstance(event.widget, (tk.Entry, ttk.Entry, tk.Text))  # a readonly dropdown takes no typing
                  and str(event.widget.cget("state")) not in ("readonly", "disabled"))
        ready = self.session is not None or action == self.next_in_queue
        if self.app.notebook.select() == str(self) and ready and not typing:
            action()
            return "break"
        return None

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
        from utils.readers.labels import find_label_file
        from utils.results.review import ReviewSession
        from utils.data.video_io import FrameReader
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
        self.paths.update(video=str(video), frames=str(frames_csv),
                          model=str(model_path) if model_path else self.paths["model"])
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

    def ask_queue(self) -> None:
        path = filedialog.askopenfilename(title="Review queue (suggest_review.py)", filetypes=[("CSV", "*.csv")])
        if path:
            self.open_queue(path)

    def open_queue(self, path) -> None:
        """Work through suggest_review.py's queue: n opens each bout in turn (its recording, if another)."""
        self.queue, self.queue_path, self.queue_next = pd.read_csv(path), Path(path), 0
        self.status.set(f"{len(self.queue)} bouts in the queue {Path(path).name}: press n for the first")

    def next_in_queue(self) -> None:
        if self.queue is None or self.queue_next >= len(self.queue):
            self.status.set("the review queue is done (or none is open: Queue…); retrain to learn from it"
                            if self.queue is not None else "open a review queue first (Queue…; suggest_review.py)")
            return
        entry = self.queue.iloc[self.queue_next]
        frames_csv = (self.queue_path.parent / entry["recording"]).resolve()
        if self.paths["frames"] is None or Path(self.paths["frames"]).resolve() != frames_csv:
            try:
                video = self.video_of(frames_csv)
            except UserError as exc:
                messagebox.showerror("Cannot open the queue's next recording", str(exc), parent=self)
                return
            self.open(video, frames_csv)
            if self.session is None or Path(self.paths["frames"]).resolve() != frames_csv:
                return
        self.queue_next += 1
        self.playing = False
        self.seek(int(entry["start_frame"]))
        self.select_bout(self.current_bout().start)
        self.status.set(f"queue {self.queue_next}/{len(self.queue)}: frames {entry['start_frame']}-{entry['end_frame']}, "
                        f"the model says {entry['label']} (doubt {entry['doubt']:.2f}); confirm or correct it, then n")

    @staticmethod
    def video_of(frames_csv: Path) -> Path:
        """The video a frames.csv was made from: the one its workbook names, else one of its name beside it."""
        workbook = Path(str(frames_csv).replace(".frames.csv", ".metrics.xlsx"))
        named = None
        if workbook.is_file():
            meta = pd.read_excel(workbook, sheet_name="metadata")
            named = dict(zip(meta["key"], meta["value"])).get("video_path")
            named = None if named in ("None", "nan") else named  # the workbook writes every value as text
        stem = frames_csv.name[:-len(".frames.csv")]
        candidates = ([Path(named), frames_csv.parent / Path(named).name] if isinstance(named, str) else []) + \
            [frames_csv.with_name(stem + ext) for ext in (".mp4", ".avi", ".mov", ".mkv")]
        found = next((c for c in candidates if c.is_file()), None)
        if found is None:
            raise UserError(f"the video of {frames_csv} was not found ({named or 'its workbook names none'}, nor "
                            f"{stem}.mp4 beside it): open it with Open video…")
        return found

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
        from utils.readers.labels import load_frame_labels
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

        from utils.results.outputs import draw_review
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

    def second(self) -> int:
        return max(int(round(self.reader.info.fps)), 1)

    def goto_bout(self, delta: int) -> None:
        """To the start of the previous / next bout in time, selected in the list for [ and ]."""
        bouts = self.session.bouts()
        here = next(i for i, b in enumerate(bouts) if b.start <= self.frame_index <= b.end)
        target = bouts[int(np.clip(here + delta, 0, len(bouts) - 1))]
        self.playing = False
        self.seek(target.start)
        self.select_bout(target.start)

    def select_bout(self, start: int) -> None:
        """Select the bout starting at `start` in the list without seeking to it."""
        if self.tree.exists(str(start)):
            self._selecting = True
            self.tree.selection_set(str(start))
            self.tree.see(str(start))
            self.update_idletasks()
            self._selecting = False

    def faster(self, steps: int) -> None:
        """Next playback speed up or down; playing goes on from the frame shown at the new speed."""
        index = int(np.clip(self.SPEEDS.index(self.speed.get()) + steps, 0, len(self.SPEEDS) - 1))
        self.speed.set(self.SPEEDS[index])
        self._play_started = (time.monotonic(), self.frame_index)
        self.status.set(f"speed x{self.SPEEDS[index]}")

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
        from utils.results.plots import ethogram_bars
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
        self.select_bout(bout.start)  # the bout just edited stays selected: [ and ] go on acting on it
        self.status.set(f"bout {bout.start}-{bout.end}: {bout.label or '(unlabelled)'}; saved to "
                        f"{self.autosave_path(self.paths['frames']).name}")

    def relabel(self) -> None:
        self.edit(lambda: self.session.relabel(self.current_bout(), self.label_choice.get()))

    def ask_new_class(self) -> None:
        from tkinter import simpledialog
        if self.session is not None:
            self.add_class(simpledialog.askstring("New behaviour", "Name of the behaviour to add:", parent=self))

    def add_class(self, name) -> None:
        """Add a behaviour while reviewing (key: its number); the retrain learns it."""
        if not name:
            return
        try:
            key = self.session.add_class(name)
        except UserError as exc:
            self.status.set(f"⚠ {exc}")
            return
        self.label_choice.configure(values=self.session.classes)
        self.label_choice.set(name)
        self.session.save(self.autosave_path(self.paths["frames"]))
        self.status.set(f"added behaviour {name}" + (f" (key {key})" if key <= 9 else "") +
                        "; label its bouts, and retrain to teach it")

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
        self.status.set(f"exported the {int(self.session.checked().sum())} frames you reviewed to {path}")
        return path

    def show_agreement(self) -> dict:
        if self.session is None:
            return None
        try:
            result = self.session.agreement()
        except UserError as exc:
            self.status.set(f"⚠ {exc}")
            return None
        lines = [f"model vs your labels over the {result['frames']} frames you reviewed (of "
                 f"{result['total_frames']})", f"per-frame macro-F1 {result['macro_f1']:.3f}, accuracy {result['accuracy']:.3f}",
                 f"{'behaviour':<14}{'precision':>10}{'recall':>8}{'F1':>7}{'frames':>8}"]
        lines += [f"{c:<14}{s['precision']:>10.3f}{s['recall']:>8.3f}{s['f1']:>7.3f}{s['support']:>8}"
                  for c, s in result["per_class"].items()]
        replace_text(self.report, "\n".join(lines))
        return result

    # ----------------------------------------------------------------------------------------- retrain
    def retrain(self) -> None:
        """Retrain on the model's training data plus every corrected video, as one job (retrain_behavior_model.py);
        afterwards both models' scores on the same held-out windows are shown side by side, and the new model is
        used only if the user takes it."""
        if self.session is None or self.app.job_tab is not None:
            self.status.set("⚠ open a reviewed video first, and wait for any running job")
            return
        if not self.paths["model"]:
            self.ask_model()
            if not self.paths["model"]:
                return
        try:
            self.export(self.corrected_folder() / f"{Path(self.paths['video']).stem}.csv")
            original_manifest_of(load_checkpoint(self.paths["model"]), self.paths["model"])  # said now, not later
            self.plan = plan_retrain(self.paths["model"], self.corrected_folder())
        except UserError as exc:
            messagebox.showerror("Cannot retrain", in_dashboard_terms(str(exc)), parent=self)
            return
        self.view.start(Job(self.plan.commands(), self.plan.folder / "retrain.log", self.plan.run_dir / "STOP").start())
        self.retrain_button.configure(state="disabled")
        self.cancel_button.configure(state="normal")
        self.app.job_started(self)

    @property
    def job(self):
        return self.view.job

    def poll(self) -> bool:
        if not self.view.poll():
            return False
        self.retrain_button.configure(state="normal")
        self.cancel_button.configure(state="disabled")
        if self.view.succeeded:
            self.show_retrain_result()
        return True

    def show_retrain_result(self) -> dict:
        """Both models on the same held-out windows (the run's comparison.json), per class; the new model replaces
        the current one only when the user says so, and a worse one is marked worse."""
        import json
        if not self.plan.comparison.is_file():
            self.status.set(f"retraining ended without a comparison; the current model is unchanged (see "
                            f"{self.plan.folder / 'retrain.log'})")
            return None
        result = json.loads(self.plan.comparison.read_text())
        lines = ["held-out windows (the same for both)   current    new"]
        for group, scores in result["groups"].items():
            lines.append(f"{group} ({scores['windows']} windows): macro-F1 {scores['current']['macro_f1']:>8.3f} "
                         f"{scores['new']['macro_f1']:>6.3f}")
            lines += [f"    {c:<22}{scores['current']['per_class_f1'][c]:>16.3f} {scores['new']['per_class_f1'][c]:>6.3f}"
                      for c, n in scores["new"]["support"].items() if n]
        verdict = result["verdict"]
        lines.append(f"the new model is {verdict.upper()} ({result['macro_f1_change']:+.3f}); "
                     f"{self.plan.comparison.with_suffix('.csv')}")
        replace_text(self.report, "\n".join(lines))
        advice = ("Recommended: it is better." if result.get("recommended") == "new" else
                  "Recommended: keep the current model (the new one is not shown to be better; within "
                  f"{WORSE_BY} it can still be worse on other recordings).")
        question = (f"The new model scores {result['macro_f1_change']:+.3f} macro-F1 on the held-out windows"
                    f"{' (WORSE than the current one)' if verdict == 'worse' else ''}. {advice} Use it from now on?")
        if self.ask_yes_no("Use the retrained model?", question):
            self.paths["model"] = str(self.plan.new_model)
            self.app.tabs["Inference"].form.set("inference", "model_path", str(self.plan.new_model))
            self.status.set(f"using the retrained model {self.plan.new_model}")
        else:
            self.status.set(f"kept the current model; the retrained one stays in {self.plan.run_dir}")
        self.update_files()
        return result

    def ask_yes_no(self, title: str, question: str) -> bool:
        return messagebox.askyesno(title, question, parent=self)
