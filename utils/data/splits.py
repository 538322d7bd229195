"""Train/val/test assignment: by source video (no leakage, stratified by class), by window (leaky), or a file."""
import csv
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

from utils.errors import UserError

SPLITS = ("train", "val", "test")


def validate_ratios(train: float, val: float, test: float) -> None:
    ratios = (train, val, test)
    if not all(0 <= r <= 1 for r in ratios) or not abs(sum(ratios) - 1.0) <= 1e-6:  # NaN fails both
        raise UserError(f"split ratios train={train} val={val} test={test} must each lie in 0..1 and sum to 1; "
                        f"fix --train_ratio/--val_ratio/--test_ratio")
    if train <= 0:
        raise UserError("--train_ratio must be > 0: training needs samples")


def split_counts(n: int, ratios) -> list:
    """Items per split for n items: largest remainder; with n >= 3 every split with a ratio > 0 gets one."""
    raw = [n * r for r in ratios]
    counts = [int(np.floor(x)) for x in raw]
    for i in np.argsort([c - x for c, x in zip(counts, raw)])[: n - sum(counts)]:
        counts[i] += 1
    if n >= 3:
        for i in (1, 2):
            if ratios[i] > 0 and counts[i] == 0:
                donor = int(np.argmax(counts))
                counts[donor] -= 1
                counts[i] += 1
    return counts


def stratified_assign(groups: dict, ratios, seed: int) -> dict:
    """{item: split} where groups = {class_name: [items]}, stratified by class: each class's items (in random
    order) are spread evenly over one queue, and the queue is cut by the ratios. A class of many items is split by
    the ratios on its own; classes of one or two items (long videos grouped by their majority class) still fill
    every split, where cutting each class alone would put them all in train and leave validation empty."""
    rng = np.random.default_rng(seed)
    queue = []
    for class_name in sorted(groups):
        items = sorted(groups[class_name])
        rng.shuffle(items)
        queue += [((rank + 0.5) / len(items), rng.random(), item) for rank, item in enumerate(items)]
    queue.sort(key=lambda entry: entry[:2])
    splits = [split for split, count in zip(SPLITS, split_counts(len(queue), ratios)) for _ in range(count)]
    return {item: split for (_, _, item), split in zip(queue, splits)}


def split_by_video(video_windows: dict, ratios, seed: int) -> dict:
    """{video: split}; video_windows = {video: [class names of its windows]}, stratified by majority class."""
    groups = defaultdict(list)
    for video, classes in video_windows.items():
        groups[Counter(classes).most_common(1)[0][0]].append(video)
    return stratified_assign(groups, ratios, seed)


def read_split_file(path, videos) -> dict:
    """{video: split} from a CSV `video,split`; video = path relative to dataset_root or a unique file name."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"split file not found: {path}; give a CSV with columns video,split")
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows or not {"video", "split"} <= set(rows[0]):
        raise UserError(f"{path}: expected a CSV header `video,split`")
    by_name = defaultdict(list)
    for v in videos:
        by_name[Path(v).name].append(v)
    assignment = {}
    for row in rows:
        key, split = row["video"].strip().replace("\\", "/"), row["split"].strip().lower()
        if split not in SPLITS:
            raise UserError(f"{path}: split {split!r} for {key} is not one of {', '.join(SPLITS)}")
        matches = [key] if key in videos else by_name.get(key, [])
        if len(matches) > 1:
            raise UserError(f"{path}: file name {key} matches several videos {matches}; use the relative path")
        for video in matches:
            assignment[video] = split
    missing = [v for v in videos if v not in assignment]
    if missing:
        raise UserError(f"{path} gives no split for {len(missing)} video(s), e.g. {missing[0]}; add rows for them")
    return assignment


def time_blocked_folds(entries: list, folds: int) -> list:
    """[(fit indices, held-out indices)] for cross-validation within videos: each video's windows, in time order,
    are cut into `folds` contiguous blocks, and fold k holds out block k of every video. Windows are fitted only
    if they share no frame with their video's held-out block, since overlapping windows would leak its labels.
    Folds that would hold out nothing or fit nothing are left out."""
    by_video = defaultdict(list)
    for index, entry in enumerate(entries):
        by_video[entry["source_video"]].append(index)
    blocks = {video: np.array_split(sorted(indices, key=lambda i: entries[i]["start_frame"]), folds)
              for video, indices in by_video.items()}
    out = []
    for k in range(folds):
        held = [int(i) for video in blocks for i in blocks[video][k]]
        spans = {video: (min(entries[i]["start_frame"] for i in block[k]), max(entries[i]["end_frame"] for i in block[k]))
                 for video, block in blocks.items() if len(block[k])}
        fit = [i for i, e in enumerate(entries) if e["source_video"] not in spans
               or e["end_frame"] < spans[e["source_video"]][0] or e["start_frame"] > spans[e["source_video"]][1]]
        if held and fit:
            out.append((fit, held))
    return out


MIN_CLASS_WINDOWS = 5  # fewer cannot put a class in train, validation and test and still leave it learnable


def teaching_problems(classes_by_split: dict, recordings_by_split: dict, strategy: str) -> list:
    """What keeps a dataset from teaching or from measuring, one sentence each (the first: one class, which the
    trainer refuses; the others are warnings). classes_by_split: {split: [class name per window]};
    recordings_by_split: {split: set of recordings}."""
    counts = Counter(c for names in classes_by_split.values() for c in names)
    problems = []
    if len(counts) == 1:
        only = next(iter(counts))
        problems.append(f"every window is one behaviour ({only}): a classifier learns nothing from one class, and a "
                        f"model that always says {only} would score a perfect F1; label at least one other behaviour "
                        f"(or set --background_label for unlabelled frames) and prepare again")
    few = sorted(c for c, n in counts.items() if n < MIN_CLASS_WINDOWS)
    if few:
        problems.append(f"class(es) {', '.join(f'{c} ({counts[c]} windows)' for c in few)} have fewer than "
                        f"{MIN_CLASS_WINDOWS} windows: too few to appear in train, validation and test; label more of "
                        f"them or merge them into another class")
    recordings = set().union(*recordings_by_split.values()) if recordings_by_split else set()
    empty = [s for s in ("val", "test") if not classes_by_split.get(s)]
    if strategy == "video" and len(recordings) < 3 and empty:
        problems.append(f"all windows come from {len(recordings)} recording(s) and the video split keeps each in one "
                        f"split, so {' and '.join(empty)} hold(s) no windows; add recordings, or use --split_strategy "
                        f"window (windows of one video in several splits: optimistic scores)")
    for split in ("val", "test"):
        held = Counter(classes_by_split.get(split, []))
        if len(held) == 1 and len(counts) > 1:
            problems.append(f"{split} windows are all {next(iter(held))}: its macro-F1 scores only that class (a model "
                            f"that always says it scores 1.0); add {split} recordings of the other behaviours")
        elif held and set(counts) - set(held):
            problems.append(f"no {split} windows for class(es) {', '.join(sorted(set(counts) - set(held)))}: "
                            f"{split} macro-F1 says nothing about them")
    return problems
