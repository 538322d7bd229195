"""Pose files from other trackers as input: DeepLabCut, SLEAP, LightningPose and NWB, read through `movement`.

Which files are pose files (docs/formats.md, "Pose files"):
    <stem>DLC_<scorer>.csv / .h5   DeepLabCut predictions, single- or multi-animal (DeepLabCut's own naming)
    <stem>.dlc.csv / <stem>.pose.csv / <stem>.lp.csv   the same CSV layout (LightningPose writes it too)
    <stem>.slp, <stem>.predictions.slp                 SLEAP labels or predictions
    <stem>.analysis.h5, <stem>.h5                      SLEAP analysis HDF5 (has `tracks`) or DeepLabCut HDF5
    <stem>.nwb                                         NWB with the ndx-pose extension
    <stem>.anipose.csv / <stem>.pose3d.csv             Anipose 3D triangulation (x, y, z per keypoint)
A CSV counts as a pose file only when its first cell is `scorer` (DeepLabCut's header) or its header is Anipose's
(`fnum`, the calibration columns and <keypoint>_x/_y/_z/_score columns), so a `frame,behavior` label file beside it
is never mistaken for one. 3D files keep x and y as the floor plane and z as the height (PoseRecording.z): features
stay egocentric in the floor plane and add each keypoint's height (utils.features.motion.height_features).
`<stem>` (pose_stem) pairs the pose file with its video
(<stem>.mp4) and its label file (<stem>.csv or a BORIS export).

Why movement and not sleap-io alone: sleap-io (0.9.5) reads SLEAP and NWB files, but its DeepLabCut reader is for
labelled training frames (image paths, no likelihood); movement reads DeepLabCut, SLEAP (through sleap-io),
LightningPose, Anipose and NWB prediction files into one array layout with confidences and individuals.
"""
import logging
import re
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

import numpy as np

from utils.errors import UserError, first_line
from utils.data.video_io import find_videos

log = logging.getLogger(__name__)
POSE_SUFFIXES = (".csv", ".h5", ".slp", ".nwb")
# name parts that trackers and users append to a recording's stem
_STEM_TAILS = re.compile(r"(DLC_.*|\.(dlc|pose|lp|predictions|analysis|predicted|anipose|pose3d))$", re.IGNORECASE)
ANIPOSE_COLUMNS = ("fnum", "center_0", "center_1", "center_2", *(f"M_{i}{j}" for i in range(3) for j in range(3)))


@dataclass
class PoseRecording:
    """One pose file. xy [T, I, K, 2] frame pixels (3D files: the floor plane, in the file's units), NaN where the
    tracker gave no point or its likelihood is below the threshold; conf [T, I, K] likelihood (0 where missing);
    z [T, I, K] the height in 3D files (NaN where xy is), None in 2D ones."""
    path: Path
    software: str
    keypoint_names: list
    individuals: list
    xy: np.ndarray
    conf: np.ndarray
    fps: float = None  # from the file when it stores one (NWB); None otherwise
    damage: str = None  # what the file is missing (a row cut short, frames absent), warned when read
    z: np.ndarray = None

    @property
    def num_frames(self) -> int:
        return self.xy.shape[0]

    @property
    def spatial_dims(self) -> int:
        return 2 if self.z is None else 3

    def individual_index(self, name) -> int:
        """Index of an individual by name; None picks the only one (an error when there are several)."""
        if name is None:
            if len(self.individuals) > 1:
                raise UserError(f"{self.path} tracks {len(self.individuals)} animals {self.individuals}; say which "
                                f"one (pose files are split per animal by the dataset scan)")
            return 0
        if name not in self.individuals:
            raise UserError(f"{self.path} has no animal '{name}'; it tracks {self.individuals}")
        return self.individuals.index(name)


def pose_stem(path) -> str:
    """The recording's name: the file name without its suffix and any tracker tail (DLC_<scorer>, .analysis...)."""
    name = Path(path).name
    for suffix in POSE_SUFFIXES:
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
            break
    return _STEM_TAILS.sub("", name) or name


def pose_software(path):
    """'DeepLabCut', 'Anipose', 'SLEAP' or 'NWB' from the file's suffix and content; None when it is not a pose
    file."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in POSE_SUFFIXES or path.name.startswith("."):
        return None
    if suffix == ".slp":
        return "SLEAP"
    if suffix == ".nwb":
        return "NWB"
    if suffix == ".csv":
        try:
            with open(path, encoding="utf-8-sig", errors="replace") as f:
                header = [cell.strip() for cell in f.readline().split(",")]
        except OSError:  # missing or unreadable: not a pose file we can use
            return None
        if header[0].lower() == "scorer":
            return "DeepLabCut"
        return "Anipose" if is_anipose_header(header) else None
    import h5py
    try:
        with h5py.File(path, "r") as f:
            return "SLEAP" if "tracks" in f else "DeepLabCut"
    except OSError:
        return None


def is_anipose_header(header: list) -> bool:
    """Anipose's triangulation table: its frame and calibration columns and an x/y/z/score column set per keypoint."""
    return set(ANIPOSE_COLUMNS) <= set(header) and any(c.endswith("_z") for c in header)


def is_pose_file(path) -> bool:
    return pose_software(path) is not None


def named_like_pose_file(path) -> bool:
    """Named as trackers name their CSVs (<stem>DLC_<scorer>.csv, .dlc/.pose/.lp.csv): meant as a pose file."""
    name = Path(path).name
    return name.lower().endswith(".csv") and _STEM_TAILS.search(name[:-4]) is not None


def pose_file_problem(path):
    """Why a CSV named like a pose file is not read as one (its first cells), or None when it is one or is not
    named like one: such a file is reported, never silently taken for a video or dropped from a dataset."""
    if not named_like_pose_file(path) or is_pose_file(path):
        return None
    try:
        with open(path, encoding="utf-8-sig", errors="replace") as f:
            first = f.readline().strip()[:40]
    except OSError as exc:
        return f"{path} cannot be read: {exc.strerror}"
    return (f"{path} is named like a pose file but starts {first!r}, neither DeepLabCut's header (rows scorer / "
            f"bodyparts / coords, first cell `scorer`) nor Anipose's (fnum, center_0.., M_00.., <keypoint>_x/_y/_z/"
            f"_score); export the predictions from the tracker (or save them with movement), see docs/formats.md, "
            f"Pose files")


def recording_name(path) -> str:
    """A recording's name for its outputs and label file: a video's stem, or a pose file's (pose_stem)."""
    return pose_stem(path) if is_pose_file(path) else Path(path).stem


def find_pose_file(video_path):
    """The pose file beside a video (same stem, pose_stem rules); None when there is none. Several: an error."""
    video_path = Path(video_path)
    found = sorted(p for p in video_path.parent.iterdir()
                   if p.is_file() and p != video_path and pose_stem(p) == video_path.stem and is_pose_file(p))
    if len(found) > 1:
        raise UserError(f"{len(found)} pose files for {video_path.name}: {', '.join(p.name for p in found)}; keep one")
    return found[0] if found else None


def find_recordings(root: Path, pose_files: bool, skipped: list) -> list:
    """Videos under root; with `pose_files` (detector pose_file), the videos that have a pose file beside them plus
    the pose files that have no video (pose only). Videos left out are explained in `skipped`."""
    videos = find_videos(root)
    if not pose_files:
        return videos
    with_pose = []
    for v in videos:
        if find_pose_file(v) is None:
            skipped.append(f"{v.relative_to(root).as_posix()}: no pose file beside it (<stem>DLC_<scorer>.h5 or .csv, "
                           f"<stem>.slp, <stem>.analysis.h5, <stem>.nwb)")
        else:
            with_pose.append(v)
    video_stems = {(v.parent, v.stem) for v in videos}
    files = [p for p in sorted(root.rglob("*")) if p.is_file()]
    alone = [p for p in files if (p.parent, pose_stem(p)) not in video_stems and is_pose_file(p)]
    skipped += [pose_file_problem(p) for p in files if pose_file_problem(p)]
    return sorted(with_pose + alone)


def read_pose_file(path, min_likelihood: float = 0.0) -> PoseRecording:
    """Read any supported pose file; points with likelihood below min_likelihood become missing (NaN). The last
    few reads are kept (keyed by the file's size and time): a recording's animals, its preprocessing and its
    inference each ask for it. The arrays are shared: read-only by convention."""
    path = Path(path).resolve()
    stat = path.stat() if path.is_file() else None
    return _read_pose_file(path, stat.st_size if stat else 0, stat.st_mtime_ns if stat else 0, min_likelihood)


@lru_cache(maxsize=4)
def _read_pose_file(path: Path, size: int, mtime_ns: int, min_likelihood: float) -> PoseRecording:
    software = pose_software(path)
    if software is None:
        raise UserError(f"{path} is not a pose file this tool reads: expected a DeepLabCut CSV (first cell `scorer`) "
                        f"or HDF5, a SLEAP .slp or analysis .h5, or an NWB file")
    logging.getLogger("movement").setLevel(logging.WARNING)
    from movement.io import load_dataset
    try:
        ds = load_dataset(path, source_software=software)
    except Exception as exc:  # movement and its readers raise many types for a damaged or foreign file
        raise UserError(f"cannot read pose file {path} as {software}: {type(exc).__name__}: "
                        f"{first_line(exc)}") from None
    position = ds["position"].transpose("time", "individuals", "keypoints", "space").values.astype(np.float32)
    conf = ds["confidence"].transpose("time", "individuals", "keypoints").values.astype(np.float32)
    conf = np.where(np.isfinite(conf), conf, np.where(np.isfinite(position).all(-1), 1.0, 0.0)).astype(np.float32)
    missing = ~np.isfinite(position).all(-1) | (conf < min_likelihood)
    position[missing] = np.nan
    conf[missing] = 0.0
    fps = ds.attrs.get("fps") if software == "NWB" else None
    z = np.ascontiguousarray(position[..., 2]) if position.shape[-1] == 3 else None
    recording = PoseRecording(path, software, [_node_name(k) for k in ds["keypoints"].values],
                              [str(i) for i in ds["individuals"].values], np.ascontiguousarray(position[..., :2]),
                              conf, float(fps) if fps else None, z=z)
    if software == "DeepLabCut":
        check_dlc_rows(recording)
    if recording.num_frames == 0:
        raise UserError(f"pose file {path} holds no frames")
    return recording


DLC_HEADER_CELLS = {"scorer", "individuals", "bodyparts", "coords"}


def check_dlc_rows(recording: PoseRecording) -> None:
    """A DeepLabCut file read in full. CSV: every row as wide as the header (a last row cut short is a file cut
    while being written or copied: dropped, and said; a row of the wrong width in the middle is damage that cannot
    be placed: an error). CSV and HDF5: frame numbers (the first column, the table's index) without gaps, missing
    rows becoming untracked frames at their own index so later frames keep their times."""
    notes = []
    if recording.path.suffix.lower() == ".csv":
        frames = check_csv_widths(recording, notes)
    else:
        import pandas as pd
        index = pd.read_hdf(recording.path).index
        frames = np.asarray(index, np.int64) if pd.api.types.is_integer_dtype(index) else None
    if frames is not None and len(frames) == recording.num_frames and (np.diff(frames) != 1).any():
        fill_missing_frames(recording, frames, notes)
    if notes:
        recording.damage = f"pose file {recording.path}: {'; '.join(notes)}; export it again or copy the whole file"
        log.warning("DAMAGED: %s", recording.damage)


def check_csv_widths(recording: PoseRecording, notes: list):
    """The frame numbers of a DeepLabCut CSV's rows (None where the first column holds image paths), its rows
    checked against the header's width."""
    path = recording.path
    with open(path, encoding="utf-8-sig", errors="replace") as f:
        lines = f.read().splitlines()
    header = 0
    while header < len(lines) and lines[header].split(",", 1)[0].strip().lower() in DLC_HEADER_CELLS:
        header += 1
    rows = [line for line in lines[header:] if line.strip()]
    width = lines[0].count(",")
    short = [i for i, line in enumerate(rows) if line.count(",") != width]
    if short and short != [len(rows) - 1]:
        line = header + short[0] + 1
        raise UserError(f"pose file {path} line {line} has {rows[short[0]].count(',') + 1} values, the header "
                        f"{width + 1}: the file is damaged; export it again from the tracker")
    if short:
        notes.append(f"its last row (line {header + len(rows)}) is cut short, {rows[-1].count(',') + 1} of "
                     f"{width + 1} values: the file was cut while being written or copied; that frame is dropped")
        rows = rows[:-1]
        recording.xy, recording.conf = recording.xy[:len(rows)], recording.conf[:len(rows)]
    return frame_numbers(rows)


def fill_missing_frames(recording: PoseRecording, frames: np.ndarray, notes: list) -> None:
    """Rows at their frame numbers, absent frames untracked (NaN); frame numbers that go back are an error."""
    if (np.diff(frames) <= 0).any():
        raise UserError(f"pose file {recording.path}: frame numbers go backwards or repeat near row "
                        f"{int(np.flatnonzero(np.diff(frames) <= 0)[0]) + 1}; export it again from the tracker")
    xy = np.full((int(frames[-1]) + 1, *recording.xy.shape[1:]), np.nan, np.float32)
    conf = np.zeros(xy.shape[:-1], np.float32)
    xy[frames], conf[frames] = recording.xy, recording.conf
    absent = np.setdiff1d(np.arange(len(xy)), frames)
    notes.append(f"{len(absent)} frames have no row ({describe_frames(absent)}); they count as untracked")
    recording.xy, recording.conf = xy, conf


def frame_numbers(rows: list):
    """The first column as frame numbers, or None where it is not numbers (labelled frames' image paths)."""
    try:
        return np.array([int(float(row.split(",", 1)[0])) for row in rows], np.int64)
    except ValueError:
        return None


def describe_frames(frames) -> str:
    """Frame numbers as ranges: 'frames 120-139, 400'."""
    runs, start = [], frames[0]
    for prev, cur in zip(frames[:-1], frames[1:]):
        if cur != prev + 1:
            runs.append((start, prev))
            start = cur
    runs.append((start, frames[-1]))
    text = ", ".join(f"{a}-{b}" if b > a else f"{a}" for a, b in runs[:5])
    return f"frames {text}{' ...' if len(runs) > 5 else ''}"


def _node_name(value) -> str:
    """A keypoint's name; movement 0.15 reads NWB node names as "Node(name='snout')" with ndx-pose 0.4."""
    match = re.fullmatch(r"Node\(name='(.*)'\)", str(value))
    return match.group(1) if match else str(value)


def flip_idx_from_names(names) -> list:
    """Keypoint index each keypoint becomes under a horizontal flip, pairing names by left/right; [] if unnamed."""
    if not names:
        return []
    index = {n: i for i, n in enumerate(names)}
    swap = {"left": "right", "right": "left", "Left": "Right", "Right": "Left", "l_": "r_", "r_": "l_"}
    flip = []
    for name in names:
        partner = name
        for a, b in swap.items():
            if a in name and name.replace(a, b) in index:
                partner = name.replace(a, b)
                break
        flip.append(index[partner])
    return flip


def recording_animals(path, reads_pose_files: bool) -> list:
    """The animals to follow in a recording one by one: the names of a multi-animal pose file's animals (a detector
    that reads pose files), otherwise [None] (the one animal)."""
    if not reads_pose_files:
        return [None]
    pose_file = Path(path) if is_pose_file(path) else find_pose_file(path)
    animals = read_pose_file(pose_file).individuals if pose_file else []
    return animals if len(animals) > 1 else [None]


def check_frame_count(recording: PoseRecording, video_frames: int, video) -> None:
    """A pose file beside a video must describe that video: the same number of frames (containers may report
    one or two more or fewer than they decode)."""
    if video_frames > 0 and abs(recording.num_frames - video_frames) > 2:
        raise UserError(f"{recording.path} has {recording.num_frames} frames but {video} has {video_frames}; the pose "
                        f"file belongs to another video, or was made on a trimmed copy: re-run the tracker on this "
                        f"video")


def parse_keypoint_map(entries) -> dict:
    """{file's keypoint name: the name used} from the keypoint_map setting's 'file name=name used' entries; an
    empty file name ('=neck') says the files have no such keypoint ({"": ["neck"]})."""
    mapping, absent = {}, []
    for entry in entries or []:
        source, sep, target = str(entry).partition("=")
        if not sep or not target.strip():
            raise UserError(f"keypoint_map entry {entry!r} is not 'file name=name used' (e.g. 'Nose=snout'; "
                            f"'=neck' for a keypoint the files lack)")
        if not source.strip():
            absent.append(target.strip())
        elif mapping.setdefault(source.strip(), target.strip()) != target.strip():
            raise UserError(f"keypoint_map renames '{source.strip()}' twice ({mapping[source.strip()]}, "
                            f"{target.strip()}); give it one name")
    return {**mapping, "": absent} if absent else mapping


def plain_name(name) -> str:
    """A keypoint name without case, spaces or punctuation: 'Left Ear', 'left_ear' and 'leftEar' are one name."""
    return re.sub(r"[^a-z0-9]", "", str(name).lower())


def conform_keypoints(recording: PoseRecording, expected: list, keypoint_map: dict, expected_from: str) -> tuple:
    """The recording with the keypoints `expected` (a model's, or the first file's), in that order: each found
    by its name after keypoint_map, else by its name ignoring case, spaces and punctuation. Keypoints of the file
    that are not expected are left out; an expected keypoint the map declares absent ('=neck') is never
    detected. Any other expected keypoint missing is an error naming the fix. Returns (recording, notes: what was
    matched by a loose name, left out or absent, for the log)."""
    absent = set(keypoint_map.get("", []))
    renamed = [keypoint_map.get(n, n) for n in recording.keypoint_names]
    if renamed == list(expected) == list(recording.keypoint_names):
        return recording, []
    exact = {n: i for i, n in reversed(list(enumerate(renamed)))}
    loose = {plain_name(n): i for i, n in reversed(list(enumerate(renamed)))}
    index = [exact.get(n, loose.get(plain_name(n))) for n in expected]
    missing = [n for n, i in zip(expected, index) if i is None and n not in absent]
    if missing:
        raise UserError(f"{recording.path} has keypoints {recording.keypoint_names}, but {expected_from} "
                        f"{list(expected)}: {', '.join(missing)} not found; name them with --keypoint_map "
                        f"'<file's name>={missing[0]}' (YAML preprocessing.keypoint_map), or '={missing[0]}' if the "
                        f"file has none (its features are then missing)")
    notes = [f"{recording.keypoint_names[i]} read as {n}" for n, i in zip(expected, index)
             if i is not None and recording.keypoint_names[i] != n]
    unused = [n for i, n in enumerate(recording.keypoint_names) if i not in index]
    notes += [f"not used: {', '.join(unused)}"] if unused else []
    gone = [n for n, i in zip(expected, index) if i is None]
    notes += [f"absent (never detected): {', '.join(gone)}"] if gone else []
    shape = recording.xy.shape
    xy = np.full(shape[:2] + (len(expected), 2), np.nan, recording.xy.dtype)
    conf = np.zeros(shape[:2] + (len(expected),), recording.conf.dtype)
    z = None if recording.z is None else np.full(shape[:2] + (len(expected),), np.nan, recording.z.dtype)
    for k, i in enumerate(index):
        if i is not None:
            xy[:, :, k], conf[:, :, k] = recording.xy[:, :, i], recording.conf[:, :, i]
            if z is not None:
                z[:, :, k] = recording.z[:, :, i]
    return replace(recording, keypoint_names=list(expected), xy=xy, conf=conf, z=z), notes


def write_pose_file(path, xy: np.ndarray, conf: np.ndarray, keypoint_names: list, individuals: list = None,
                    fps: float = None, z: np.ndarray = None) -> Path:
    """Write keypoints [T, I, K, 2] and confidences [T, I, K] as a DeepLabCut CSV/HDF5 (by suffix) or a SLEAP
    analysis HDF5 (`.analysis.h5`), through movement: for tests, demos and converting between trackers. With
    heights z [T, 1, K]: an Anipose 3D CSV (one animal)."""
    from movement.io import load_poses, save_poses
    path = Path(path)
    if z is not None:
        return write_anipose_csv(path, xy[:, 0], z[:, 0], conf[:, 0], keypoint_names)
    individuals = individuals or [f"individual_{i}" for i in range(xy.shape[1])]
    ds = load_poses.from_numpy(np.transpose(xy, (0, 3, 2, 1)), np.transpose(conf, (0, 2, 1)),
                               individual_names=individuals, keypoint_names=list(keypoint_names), fps=fps)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{path.suffix}")  # the writers choose the format by suffix
    if path.name.endswith(".analysis.h5"):
        save_poses.to_sleap_analysis_file(ds, tmp)
    else:
        save_poses.to_dlc_file(ds, tmp, split_individuals=False)
    tmp.replace(path)
    return path


def write_anipose_csv(path, xy: np.ndarray, z: np.ndarray, conf: np.ndarray, keypoint_names: list) -> Path:
    """Anipose's triangulation table (docs/formats.md, 3D pose files): xy [T, K, 2], z [T, K], scores [T, K]; the
    calibration columns hold an identity transform, the reprojection error 0 and 2 cameras per point."""
    import pandas as pd
    from utils.io import atomic_write_csv
    columns = {"fnum": np.arange(len(xy))}
    for k, name in enumerate(keypoint_names):
        columns.update({f"{name}_x": xy[:, k, 0], f"{name}_y": xy[:, k, 1], f"{name}_z": z[:, k],
                        f"{name}_error": np.zeros(len(xy)), f"{name}_ncams": np.full(len(xy), 2),
                        f"{name}_score": conf[:, k]})
    columns.update({f"center_{i}": np.zeros(len(xy)) for i in range(3)})
    columns.update({f"M_{i}{j}": np.full(len(xy), float(i == j)) for i in range(3) for j in range(3)})
    atomic_write_csv(path, pd.DataFrame(columns))
    return Path(path)
