"""Reviewing a classified video: predictions become editable labels, corrected bout by bout.

The state is one per-frame label array (class codes, -1 = unlabelled) plus a per-frame "reviewed" flag; bouts
are its runs of equal labels. Every edit is a change of a frame span, recorded for undo/redo. The dashboard
saves the session after every edit (`<video>.review.json`, atomically, run-length encoded), so a crash loses
nothing; `export_csv` writes the corrected labels as the per-frame CSV (`frame,behavior`) that preprocessing
reads; `agreement` scores the model's predictions against the corrected labels (utils/results/metrics.py).
No widget here: every operation is tested without a display.
"""
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from utils.errors import UserError
from utils.io import atomic_write_csv, atomic_write_text
from utils.results.metrics import classification_scores

UNLABELLED = -1
FORMAT = "behaviorscope-review-1"


@dataclass
class ReviewBout:
    index: int
    start: int
    end: int  # inclusive
    label: str  # None when unlabelled (deleted, or a frame the model left unknown / without a window)
    confidence: float  # the model's mean confidence over the bout's frames
    reviewed: bool  # every frame confirmed or edited by the user

    @property
    def frames(self) -> int:
        return self.end - self.start + 1


@dataclass
class Edit:
    start: int
    before_codes: np.ndarray
    before_reviewed: np.ndarray
    after_codes: np.ndarray
    after_reviewed: np.ndarray


def runs(values: np.ndarray) -> list:
    """[(start, end inclusive, value)] of the runs of equal values."""
    if len(values) == 0:
        return []
    starts = np.flatnonzero(np.r_[True, values[1:] != values[:-1]])
    ends = np.r_[starts[1:], len(values)] - 1
    return [(int(s), int(e), values[s].item()) for s, e in zip(starts, ends)]


class ReviewSession:
    def __init__(self, classes: list, predicted, confidence=None):
        self.classes = list(classes)
        self.predicted = np.asarray(predicted, dtype=object)
        self.codes = self.encode(self.predicted)
        self.confidence = np.zeros(len(self.codes)) if confidence is None else np.asarray(confidence, np.float64)
        self.reviewed = np.zeros(len(self.codes), bool)
        self._undo, self._redo = [], []
        self._bouts = None

    @classmethod
    def from_frames_csv(cls, path, classes: list = None) -> "ReviewSession":
        """From inference's <video>.frames.csv; classes default to the model's (from the top-k columns)."""
        path = Path(path)
        try:
            frames = pd.read_csv(path)
        except (OSError, pd.errors.ParserError) as exc:
            raise UserError(f"cannot read predictions {path}: {exc}; pick a <video>.frames.csv from inference") from None
        if not {"frame", "label", "confidence"} <= set(frames.columns):
            raise UserError(f"{path} lacks frame/label/confidence columns; pick a <video>.frames.csv from inference")
        if classes is None:
            top = [c for c in frames.columns if c.startswith("top") and c.endswith("_label")]
            seen = pd.unique(frames[top + ["label"]].values.ravel())
            classes = sorted(str(c) for c in seen if isinstance(c, str) and c not in ("unknown", "no_window"))
        return cls(classes, frames["label"].to_numpy(), frames["confidence"].to_numpy())

    def encode(self, names) -> np.ndarray:
        index = {c: i for i, c in enumerate(self.classes)}
        return np.array([index.get(n, UNLABELLED) for n in names], np.int16)

    def label_names(self) -> np.ndarray:
        """Per-frame corrected labels; None where unlabelled."""
        names = np.array(self.classes + [None], dtype=object)
        return names[np.where(self.codes == UNLABELLED, len(self.classes), self.codes)]

    def __len__(self) -> int:
        return len(self.codes)

    # ---------------------------------------------------------------------------------------------- bouts
    def bouts(self) -> list:
        if self._bouts is None:
            conf = np.r_[0.0, np.cumsum(self.confidence)]
            rev = np.r_[0, np.cumsum(self.reviewed)]
            self._bouts = [ReviewBout(i, s, e, self.classes[c] if c != UNLABELLED else None,
                                      float((conf[e + 1] - conf[s]) / (e - s + 1)), bool(rev[e + 1] - rev[s] == e - s + 1))
                           for i, (s, e, c) in enumerate(runs(self.codes))]
        return self._bouts

    def bout_at(self, frame: int) -> ReviewBout:
        frame = int(np.clip(frame, 0, len(self) - 1))
        starts = [b.start for b in self.bouts()]
        return self.bouts()[int(np.searchsorted(starts, frame, side="right")) - 1]

    # ---------------------------------------------------------------------------------------------- edits
    def add_class(self, name: str) -> int:
        """A behaviour the model does not know, added while reviewing: it can label bouts at once, is exported like
        the others, and a retrain learns it (training.retrain merges classes). Its key is the next number."""
        name = str(name).strip()
        if not name or name in ("unknown", "no_window") or "," in name:
            raise UserError(f"behaviour name {name!r}: give a word or two without commas (not unknown / no_window)")
        if name in self.classes:
            raise UserError(f"{name} is already a behaviour ({', '.join(self.classes)})")
        self.classes.append(name)
        self._bouts = None
        return len(self.classes)

    def _code(self, label) -> int:
        if label is None:
            return UNLABELLED
        if label not in self.classes:
            raise UserError(f"unknown behaviour {label!r}; the model's classes are {', '.join(self.classes)}")
        return self.classes.index(label)

    def _apply(self, start: int, end: int, code=None, reviewed: bool = True) -> None:
        """Frames start..end (inclusive) get `code` (None: unchanged) and the reviewed flag, as one undoable edit."""
        start, end = max(int(start), 0), min(int(end), len(self) - 1)
        if end < start:
            return
        span = slice(start, end + 1)
        after_codes = self.codes[span].copy() if code is None else np.full(end - start + 1, code, np.int16)
        edit = Edit(start, self.codes[span].copy(), self.reviewed[span].copy(), after_codes,
                    np.full(end - start + 1, reviewed))
        self._set(edit.start, edit.after_codes, edit.after_reviewed)
        self._undo.append(edit)
        self._redo.clear()

    def _set(self, start: int, codes: np.ndarray, reviewed: np.ndarray) -> None:
        self.codes[start:start + len(codes)] = codes
        self.reviewed[start:start + len(codes)] = reviewed
        self._bouts = None

    def confirm(self, bout: ReviewBout) -> None:
        self._apply(bout.start, bout.end)

    def relabel(self, bout: ReviewBout, label: str) -> None:
        self._apply(bout.start, bout.end, self._code(label))

    def split(self, frame: int, label: str) -> None:
        """Frames from `frame` to the end of its bout become `label` (the first part keeps its label)."""
        bout = self.bout_at(frame)
        if frame <= bout.start:
            raise UserError(f"frame {frame} is the first of its bout: move to a frame inside the bout to split it")
        self._apply(frame, bout.end, self._code(label))

    def move_start(self, bout: ReviewBout, frame: int) -> None:
        """The bout now starts at `frame`: it takes frames from its predecessor, or gives them back to it."""
        if frame < bout.start:
            self._apply(frame, bout.start - 1, self.codes[bout.start])
        elif frame > bout.start:
            previous = self.codes[bout.start - 1] if bout.start > 0 else UNLABELLED
            self._apply(bout.start, min(frame, bout.end + 1) - 1, previous)

    def move_end(self, bout: ReviewBout, frame: int) -> None:
        """The bout now ends at `frame` (inclusive): it takes frames from its successor, or gives them back."""
        if frame > bout.end:
            self._apply(bout.end + 1, frame, self.codes[bout.end])
        elif frame < bout.end:
            following = self.codes[bout.end + 1] if bout.end + 1 < len(self) else UNLABELLED
            self._apply(max(frame, bout.start - 1) + 1, bout.end, following)

    def merge_next(self, bout: ReviewBout) -> None:
        """This bout and the next bout of the same behaviour become one bout: the frames between them take its
        label (the usual fix of a behaviour cut by a short misclassification); both bouts keep their own frames'
        labels. Without a later bout of that behaviour it is an error: Relabel is what changes a bout's label."""
        later = [b for b in self.bouts()[bout.index + 1:] if b.label == bout.label]
        if bout.label is None or not later:
            raise UserError(f"no later {bout.label or 'unlabelled'} bout to merge bout {bout.start}-{bout.end} with; to "
                            f"change the next bout's label, select it and Relabel")
        self._apply(bout.start, later[0].end, self.codes[bout.start])  # one edit: one undo step

    def delete(self, bout: ReviewBout) -> None:
        """The bout's frames become unlabelled: left out of the export and of the agreement."""
        self._apply(bout.start, bout.end, UNLABELLED)

    def undo(self) -> bool:
        if not self._undo:
            return False
        edit = self._undo.pop()
        self._set(edit.start, edit.before_codes, edit.before_reviewed)
        self._redo.append(edit)
        return True

    def redo(self) -> bool:
        if not self._redo:
            return False
        edit = self._redo.pop()
        self._set(edit.start, edit.after_codes, edit.after_reviewed)
        self._undo.append(edit)
        return True

    # ----------------------------------------------------------------------------------------- results
    def checked(self) -> np.ndarray:
        """Frames the user confirmed or corrected and left labelled: the only frames that are labels. A frame
        never reviewed still shows the model's prediction, which is not evidence of anything."""
        return self.reviewed & (self.codes != UNLABELLED)

    def agreement(self) -> dict:
        """The model's per-frame predictions scored against the user's labels, over the frames the user checked
        (`frames`; `total_frames`: the video's)."""
        checked = self.checked()
        if not checked.any():
            raise UserError("no reviewed frames to compare with yet: confirm or correct some bouts first")
        scores = classification_scores(self.label_names()[checked].tolist(),
                                       [str(p) for p in self.predicted[checked]], self.classes)
        return {**scores, "frames": int(checked.sum()), "reviewed_frames": int(checked.sum()),
                "total_frames": len(self)}

    def export_csv(self, path) -> Path:
        """The user's labels as `frame,behavior`: reviewed, labelled frames only (the rest stays unlabelled, so a
        retrain never learns the model's own unchecked predictions); preprocessing's per-frame label file."""
        labelled = np.flatnonzero(self.checked())
        atomic_write_csv(path, pd.DataFrame({"frame": labelled, "behavior": self.label_names()[labelled]}))
        return Path(path)

    def to_dict(self) -> dict:
        return {"format": FORMAT, "classes": self.classes, "frames": len(self),
                "labels": [[s, e, c] for s, e, c in runs(self.codes)],
                "reviewed": [[s, e] for s, e, r in runs(self.reviewed) if r]}

    def save(self, path) -> None:
        atomic_write_text(path, json.dumps(self.to_dict()) + "\n")

    def restore(self, path) -> bool:
        """Load an earlier session of the same video (saved edits); False when there is none."""
        path = Path(path)
        if not path.is_file():
            return False
        data = json.loads(path.read_text())
        saved = data.get("classes") or []
        if data.get("format") != FORMAT or data.get("frames") != len(self) or saved[:len(self.classes)] != self.classes:
            raise UserError(f"{path} belongs to another video or model ({data.get('frames')} frames, classes "
                            f"{data.get('classes')}); move it away to start a new review")
        self.classes += saved[len(self.classes):]  # behaviours added during the review
        for s, e, c in data["labels"]:
            self.codes[s:e + 1] = c
        self.reviewed[:] = False
        for s, e in data["reviewed"]:
            self.reviewed[s:e + 1] = True
        self._bouts = None
        return True


# ------------------------------------------------------------------------------------------ what to review next
QUEUE_COLUMNS = ["recording", "start_frame", "end_frame", "label", "frames", "doubt", "doubtful_frames",
                 "unfamiliar", "disagreement", "rarity", "score"]


def suggest_bouts(tables: dict, count: int = None, others: list = ()) -> pd.DataFrame:
    """The bouts of many classified recordings ({name: its frames.csv as a DataFrame}), most worth reviewing
    first: where the model hesitates, where other models disagree with it, where the recording looks unlike its
    training data, and where it says a rare behaviour. `others`: the same recordings classified by other models
    (other seeds, ensemble members run alone), each {name: frames.csv table}. Per bout:
      doubt            1 - the mean margin between the frame's two most probable classes (1: a coin toss);
      disagreement     the share of (frame, other model) pairs where the other model says another label (0
                       without other models): a single model's confidence misses its confident mistakes;
      doubtful_frames  per frame 1 - (1 - doubt)(1 - disagreement) (doubtful when the model hesitates or the
                       models disagree), summed over the bout's frames: what one review of the bout teaches. A
                       reviewer spends about as long on a bout whatever its length, so a long hesitant bout is worth more
                       than a short one (measured: ranking by doubt alone chose short transition bouts and lost
                       to random bouts, bench/README.md);
      unfamiliar       the share of the bout's frames in a window farther from the training data than the drift
                       limit (frames.csv `unfamiliar` > 1; 0 when the model has no drift reference);
      rarity           how rare the bout's label is among the predicted frames of all recordings (1: rarest; a
                       class the model seldom says is where its mistakes cost most in macro-F1);
      score            doubtful_frames x (0.5 + 0.5 rarity) x (1 + unfamiliar).
    Frames no window covered (no_window) are not suggested. Sorted by score (the first `count`)."""
    rows = []
    for name, table in tables.items():
        labels = table["label"].astype(str).to_numpy()
        second = table["top2_prob"].to_numpy(np.float64) if "top2_prob" in table else np.zeros(len(table))
        doubt = 1.0 - np.nan_to_num(table["top1_prob"].to_numpy(np.float64) - np.nan_to_num(second))
        far = (table["unfamiliar"].to_numpy(np.float64) > 1.0 if "unfamiliar" in table
               else np.zeros(len(table), bool))
        differ = disagreement(labels, [o[name] for o in others if name in o])
        doubtful = 1.0 - (1.0 - doubt) * (1.0 - differ)
        for start, end, _ in runs(pd.factorize(labels)[0]):
            if labels[start] != "no_window":
                span = slice(start, end + 1)
                rows.append({"recording": name, "start_frame": start, "end_frame": end, "label": labels[start],
                             "frames": end - start + 1, "doubt": float(doubt[span].mean()),
                             "doubtful_frames": float(doubtful[span].sum()), "unfamiliar": float(far[span].mean()),
                             "disagreement": float(differ[span].mean())})
    if not rows:
        return pd.DataFrame(columns=QUEUE_COLUMNS)
    bouts = pd.DataFrame(rows)
    counts = pd.concat([t["label"].astype(str) for t in tables.values()]).value_counts()
    counts = counts[counts.index != "no_window"]
    share = bouts["label"].map(counts).astype(float) / counts.sum()
    bouts["rarity"] = float(share.min()) / share
    bouts["score"] = bouts["doubtful_frames"] * (0.5 + 0.5 * bouts["rarity"]) * (1.0 + bouts["unfamiliar"])
    bouts = bouts[QUEUE_COLUMNS].sort_values(["score", "recording", "start_frame"], ascending=[False, True, True])
    bouts = in_turns_by_label(bouts)
    return bouts.head(count).reset_index(drop=True) if count else bouts.reset_index(drop=True)


def disagreement(labels: np.ndarray, other_tables: list) -> np.ndarray:
    """Per frame, the share of the other models' tables whose label differs from `labels` (frames a table does not
    reach, or where either says no_window, count as agreeing)."""
    differ = np.zeros(len(labels))
    for table in other_tables:
        theirs = np.full(len(labels), "no_window", dtype=object)
        given = table["label"].astype(str).to_numpy()[:len(labels)]
        theirs[:len(given)] = given
        differ += (theirs != labels) & (theirs != "no_window") & (labels != "no_window")
    return differ / max(len(other_tables), 1)


def in_turns_by_label(bouts: pd.DataFrame) -> pd.DataFrame:
    """The queue in rounds: each round takes the best-scored bout left of every predicted behaviour, best first.
    The model's doubt says little about which bouts are wrong when its errors are confident ones (measured on the
    bench: the per-bout correlation of doubt and error rate was 0.01), so no behaviour's bouts are left unreviewed
    behind another's, as a queue sorted by score alone did."""
    rounds = bouts.groupby("label", sort=False).cumcount()
    order = np.lexsort((-bouts["score"].to_numpy(), rounds.to_numpy()))
    return bouts.iloc[order]
