"""Widgets of the dashboard: settings forms generated from the schema (a field per setting: its type, range,
choices and help), tables, images, dialogs."""
import argparse
import shlex
import tkinter as tk
from contextlib import contextmanager
from pathlib import Path
from tkinter import filedialog, ttk

import numpy as np
import pandas as pd
import yaml

from gui.state import load_state, remember
from utils.config import parse_scalar, resolve_config, section_name, section_options, settings_dict, validate_value
from utils.errors import UserError
from utils.io import atomic_write_text
from utils.results.zones import zone_text


class Tooltip:
    """A setting's help after 500 ms over its field. At most one tip per field: an <Enter> without a <Leave> (a
    dropdown's list closed with Escape) once scheduled a second tip and orphaned the first over every tab."""

    def __init__(self, widget, text_fn):
        self.widget, self.text_fn, self.tip, self.job = widget, text_fn, None, None
        widget.bind("<Enter>", lambda e: self._schedule(), add="+")
        for event in ("<Leave>", "<ButtonPress>", "<Unmap>", "<FocusOut>", "<KeyPress>"):
            widget.bind(event, lambda e: self._hide(), add="+")

    def _schedule(self):
        self._hide()
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

    def __init__(self, parent, opt, row: int, column: int, on_change, required: bool = False):
        self.opt, self.on_change, self.error = opt, on_change, ""
        label = ttk.Label(parent, text=opt.label + (" *" if required else ""))
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
        self.parts = [label, self.widget]
        if opt.kind == "path":
            self.parts.append(ttk.Button(parent, text="…", width=2, command=self.browse))
            self.parts[-1].grid(row=row, column=column + 2, padx=(2, 8))
        self.required = required
        Tooltip(label, self.tip_text)
        Tooltip(self.widget, self.tip_text)
        self.var.trace_add("write", lambda *_: self.check())

    def tip_text(self) -> str:
        """The setting's name (as in YAML and on the command line), help, type and range, and its error."""
        opt = self.opt
        return (f"{opt.section}.{opt.name} (--{opt.name}){': required' if self.required else ''}\n{opt.help}\n"
                f"[{opt.kind}{', ' + opt.range_text if opt.range_text else ''}]" +
                (f"\n\u26a0 {self.error}" if self.error else ""))

    def widgets(self) -> list:
        """Label, field and browse button, as gridded in the section's box."""
        return self.parts

    def changed(self) -> bool:
        """Set to something other than the setting's default (an advanced field folded away says so)."""
        try:
            return self.get() != self.opt.default
        except UserError:
            return True

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
        if isinstance(self.widget, ttk.Entry):  # a Combobox is an Entry too: its own style keeps its arrow
            base = "TCombobox" if isinstance(self.widget, ttk.Combobox) else "TEntry"
            self.widget.configure(style=f"Invalid.{base}" if self.error else base)
        self.on_change(self)


class ScrollFrame(ttk.Frame):
    """A vertically scrolling frame (forms are longer than a laptop screen)."""

    def __init__(self, parent):
        super().__init__(parent)
        self.canvas = tk.Canvas(self, highlightthickness=0, width=760)  # the form gets most of a 1366 px screen
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


class Fold:
    """Advanced fields folded under a toggle; the toggle counts those changed from their defaults."""

    def __init__(self, box, row: int, fields: list):
        self.fields, self.open = fields, False
        self.button = ttk.Button(box, command=self.toggle, style="Toolbutton")
        self.button.grid(row=row, column=0, columnspan=6, sticky="w", padx=4, pady=(2, 4))
        for field in self.fields:
            for widget in field.widgets():
                widget.grid_remove()
        self.update()

    def toggle(self) -> None:
        self.open = not self.open
        for field in self.fields:
            for widget in field.widgets():
                if self.open:
                    widget.grid()
                else:
                    widget.grid_remove()
        self.update()

    def update(self) -> None:
        changed = sum(f.changed() for f in self.fields)
        self.button.configure(text=f"{'▾' if self.open else '▸'} {len(self.fields)} advanced settings" +
                              (f" ({changed} changed from the defaults)" if changed else ""))


class SettingsForm(ScrollFrame):
    """Fields for the settings of the given sections, their starting values resolved like the scripts do (schema <
    default_config.yaml < --config): the dashboard has no default of its own. Per section, the basic settings
    (setting(basic=True)) come first, two per row; the others are folded under "advanced" until opened. Labels are
    in words; a field's tooltip names the setting, its help and range; required settings are marked *."""

    def __init__(self, parent, classes, status_var: tk.StringVar, config_path=None, only=None, required=()):
        super().__init__(parent)
        self.classes, self.status_var, self.fields, self.folds = classes, status_var, {}, []
        for cls in classes:
            section = section_name(cls)
            box = ttk.LabelFrame(self.inner, text=section)
            box.pack(fill="x", padx=4, pady=4)
            ttk.Label(box, text=" ".join((cls.__doc__ or "").split()), foreground="#555", wraplength=720
                      ).grid(row=0, column=0, columnspan=6, sticky="w", padx=6)
            for c in (1, 4):
                box.columnconfigure(c, weight=1)
            shown = [o for n, o in section_options(cls).items() if not only or cls not in only or n in only[cls]]
            basic = [o for o in shown if o.basic or o.name in required or only]
            self.add_fields(box, section, basic, 1, required)
            advanced = [o for o in shown if o not in basic]
            if advanced:
                # the toggle's row lies between the basic fields' rows and the advanced ones' (from 100)
                self.folds.append(Fold(box, 2 + len(basic) // 2, self.add_fields(box, section, advanced, 100,
                                                                                  required)))
        self.load(config_path)

    def add_fields(self, box, section: str, options: list, first_row: int, required) -> list:
        fields = [Field(box, opt, first_row + i // 2, 3 * (i % 2), self._changed, opt.name in required)
                  for i, opt in enumerate(options)]
        self.fields.update({(section, f.opt.name): f for f in fields})
        return fields

    def _changed(self, field: Field) -> None:
        for fold in self.folds:
            fold.update()
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


@contextmanager
def writable(text: tk.Text):
    """The program writes into a text pane that may be read-only (state disabled: it takes no typing, so a tab's
    keys still act while it has the focus, and its text can still be selected and copied); its state is restored."""
    state = str(text.cget("state"))
    text.configure(state="normal")
    try:
        yield text
    finally:
        text.configure(state=state)


def replace_text(text: tk.Text, content: str) -> None:
    with writable(text):
        text.delete("1.0", "end")
        text.insert("1.0", content)


def with_scrollbars(widget) -> None:
    """Both scrollbars for a Text or Treeview that fills its own frame (widget.master): long log lines and wide
    tables are scrolled to, never cut off."""
    frame = widget.master
    across = ttk.Scrollbar(frame, orient="horizontal", command=widget.xview)
    down = ttk.Scrollbar(frame, orient="vertical", command=widget.yview)
    widget.configure(xscrollcommand=across.set, yscrollcommand=down.set)
    widget.grid(row=0, column=0, sticky="nsew")
    down.grid(row=0, column=1, sticky="ns")
    across.grid(row=1, column=0, sticky="ew")
    frame.rowconfigure(0, weight=1)
    frame.columnconfigure(0, weight=1)


class TablePane(ttk.Frame):
    """A DataFrame in a Treeview (click a header to sort)."""

    def __init__(self, parent, height: int = 12):
        super().__init__(parent)
        self.tree = ttk.Treeview(self, show="headings", height=height)
        with_scrollbars(self.tree)
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


def write_config(path, values: dict) -> None:
    atomic_write_text(path, yaml.safe_dump(values, sort_keys=False))


def folder_entry(parent, label: str, var: tk.StringVar, row: int) -> None:
    ttk.Label(parent, text=label).grid(row=row, column=0, sticky="w", padx=6)
    ttk.Entry(parent, textvariable=var, width=48).grid(row=row, column=1, sticky="we", pady=2)
    ttk.Button(parent, text="…", width=2,
               command=lambda: var.set(filedialog.askdirectory() or var.get())).grid(row=row, column=2, padx=4)
