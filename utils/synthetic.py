"""Seeded generator of top-down arena videos of one mouse-like animal, with known labels and keypoints.

The videos are the project's own test and demo data: every frame's behaviour, keypoints and box are known,
so tests can check crops, keypoint mapping and classifiers against ground truth.

Usage:
    python -m utils.synthetic --layout class_folders --output_root data/synth_clips --videos_per_class 4
    python -m utils.synthetic --layout long_videos --output_root data/synth_long --num_videos 2 --num_frames 3000
    python -m utils.synthetic --layout pose_files --output_root data/synth_pose --num_videos 4 --num_frames 3000

Behaviours (several need motion over time to tell apart; a single frame of walk, rest or turn looks alike):
    walk   translation along the heading with a body wiggle
    rest   still, slow breathing
    groom  body still, head pulled in and swinging fast from side to side
    rear   body foreshortened and head enlarged (it rises towards the camera), slight sway
    turn   rotation in place
    shake  (with --imu only) still from above, the head rolling fast from side to side: only the IMU sees it
    tail_rattle (with --imu only) still, the tail beaten from side to side: only the pose sees it

With --imu every recording gets a head-mounted IMU (<stem>.sensors.csv, simulate_imu): acceleration of the head plus
gravity and its angular rate, at 200 Hz, in the axes of an implant each animal carries turned and tilted its own
way, with sensor noise and gyroscope drift.
"""
import argparse
import csv
import math
import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

BEHAVIORS = ("walk", "rest", "groom", "rear", "turn")
KEYPOINT_NAMES = ("nose", "left_ear", "right_ear", "neck", "tail_base", "tail_tip")
FLIP_IDX = (0, 2, 1, 3, 4, 5)  # left_ear <-> right_ear under a horizontal flip
FRAME_W, FRAME_H, FPS = 640, 480, 30.0
# made for recordings with a head-mounted IMU (simulate_imu), not among BEHAVIORS: `shake` (a fast roll of the head,
# a wet-dog shake: from above its pose is a resting animal's; its bouts are short) and `tail_rattle` (the tail beaten
# from side to side at 6 Hz, body and head still: the IMU reads a resting animal). Each stream sees one of them.
SHAKE, RATTLE = "shake", "tail_rattle"
SENSOR_BEHAVIORS = (SHAKE, RATTLE)
SHORT_BOUTS = {SHAKE: (9, 21)}
RATTLE_HZ = 6.0
_NOISE_BANK = 6  # distinct sensor-noise frames cycled per video (cheap, still flickers)


@dataclass
class VideoStyle:
    """Everything about one video's look; sampled once per video so each video looks different."""
    floor_kind: str
    floor_bgr: tuple
    floor_detail_bgr: tuple
    wall_bgr: tuple
    animal_bgr: tuple
    ear_bgr: tuple
    tail_bgr: tuple
    light_gain: float  # strength of the uneven illumination, 0..0.35
    light_angle: float
    noise_sigma: float
    body_length: float  # px, nose-to-tail-base scale of the animal
    arena_margin: int


@dataclass
class AnimalState:
    x: float
    y: float
    heading: float  # radians, image coordinates (x right, y down)
    length_scale: float = 1.0  # < 1 while rearing (foreshortened)
    head_scale: float = 1.0  # > 1 while rearing (closer to the camera)
    head_angle: float = 0.0  # head yaw relative to the body
    head_extension: float = 1.0  # < 1 while grooming (head tucked)
    width_scale: float = 1.0
    tail_phase: float = 0.0


def sample_style(rng: np.random.Generator) -> VideoStyle:
    """Pick floor texture, contrast polarity, lighting and animal size for one video."""
    dark_animal = rng.random() < 0.6
    if dark_animal:
        floor = rng.integers(150, 235)
        animal = rng.integers(20, 75)
    else:
        floor = rng.integers(25, 95)
        animal = rng.integers(185, 245)
    tint = rng.integers(-18, 19, size=3)
    floor_bgr = tuple(int(np.clip(floor + t, 0, 255)) for t in tint)
    detail = int(np.clip(floor + rng.choice([-1, 1]) * rng.integers(12, 35), 0, 255))
    animal_bgr = tuple(int(np.clip(animal + t, 0, 255)) for t in rng.integers(-10, 11, size=3))
    ear = tuple(int(np.clip(c + (40 if dark_animal else -30), 0, 255)) for c in animal_bgr)
    ear = (ear[0], ear[1], min(255, ear[2] + 25))  # pinkish ears
    tail = tuple(int(np.clip(c + (30 if dark_animal else -25), 0, 255)) for c in animal_bgr)
    wall = tuple(int(np.clip(c * rng.uniform(0.5, 0.8), 0, 255)) for c in floor_bgr)
    return VideoStyle(
        floor_kind=str(rng.choice(["plain", "grid", "bedding", "cloudy"])),
        floor_bgr=floor_bgr, floor_detail_bgr=(detail, detail, detail), wall_bgr=wall,
        animal_bgr=animal_bgr, ear_bgr=ear, tail_bgr=tail,
        light_gain=float(rng.uniform(0.0, 0.35)), light_angle=float(rng.uniform(0, 2 * math.pi)),
        noise_sigma=float(rng.uniform(1.0, 6.0)), body_length=float(rng.uniform(48, 78)),
        arena_margin=int(rng.integers(12, 40)),
    )


def render_floor(style: VideoStyle, rng: np.random.Generator) -> np.ndarray:
    """The static background: textured floor, arena wall and uneven illumination (BGR uint8)."""
    img = np.empty((FRAME_H, FRAME_W, 3), np.uint8)
    img[:] = style.floor_bgr
    if style.floor_kind == "grid":
        step = int(rng.integers(40, 90))
        for x in range(int(rng.integers(0, step)), FRAME_W, step):
            cv2.line(img, (x, 0), (x, FRAME_H), style.floor_detail_bgr, 2)
        for y in range(int(rng.integers(0, step)), FRAME_H, step):
            cv2.line(img, (0, y), (FRAME_W, y), style.floor_detail_bgr, 2)
    elif style.floor_kind == "bedding":
        n = int(rng.integers(400, 1200))
        pts = rng.integers(0, [FRAME_W, FRAME_H], size=(n, 2))
        for (x, y), r in zip(pts, rng.integers(1, 4, size=n)):
            cv2.circle(img, (int(x), int(y)), int(r), style.floor_detail_bgr, -1)
    elif style.floor_kind == "cloudy":
        low = rng.normal(0, 1, size=(6, 8)).astype(np.float32)
        cloud = cv2.resize(low, (FRAME_W, FRAME_H), interpolation=cv2.INTER_CUBIC)
        img = np.clip(img.astype(np.float32) + 14 * cloud[..., None], 0, 255).astype(np.uint8)
    m = style.arena_margin
    cv2.rectangle(img, (0, 0), (FRAME_W - 1, FRAME_H - 1), style.wall_bgr, thickness=2 * m)
    yy, xx = np.mgrid[0:FRAME_H, 0:FRAME_W].astype(np.float32)
    ramp = (np.cos(style.light_angle) * (xx / FRAME_W - 0.5) + np.sin(style.light_angle) * (yy / FRAME_H - 0.5))
    gain = 1.0 + style.light_gain * ramp
    return np.clip(img.astype(np.float32) * gain[..., None], 0, 255).astype(np.uint8)


def sample_label_sequence(num_frames: int, rng: np.random.Generator, min_bout: int = 20,
                          max_bout: int = 75, behaviors=BEHAVIORS) -> list:
    """Bouts of random behaviours (no two consecutive bouts alike) covering num_frames. `behaviors`: names, drawn
    equally often, or {name: how often, relative}, as a lab's recordings have common and rare behaviours. A
    behaviour in SHORT_BOUTS keeps its own bout lengths (a head shake lasts a fraction of a second)."""
    often = dict(behaviors) if isinstance(behaviors, dict) else dict.fromkeys(behaviors, 1.0)
    labels, previous = [], None
    while len(labels) < num_frames:
        choices = [b for b in often if b != previous] or list(often)
        weights = np.array([often[b] for b in choices], np.float64)
        # equal weights draw as before (rng.choice without p), so every generated dataset stays the same
        behavior = str(rng.choice(choices) if np.ptp(weights) == 0 else rng.choice(choices, p=weights / weights.sum()))
        low, high = SHORT_BOUTS.get(behavior, (min_bout, max_bout))
        labels.extend([behavior] * int(rng.integers(low, high + 1)))
        previous = behavior
    return labels[:num_frames]


def _ease(current: float, target: float, rate: float = 0.25) -> float:
    return current + rate * (target - current)


def simulate_states(labels, style: VideoStyle, rng: np.random.Generator, fps: float = FPS) -> list:
    """One AnimalState per frame, driven by the label of each frame."""
    m = style.arena_margin * 2 + style.body_length
    state = AnimalState(x=float(rng.uniform(m, FRAME_W - m)), y=float(rng.uniform(m, FRAME_H - m)),
                        heading=float(rng.uniform(-math.pi, math.pi)))
    dt = 1.0 / fps
    turn_sign, walk_speed, phase = 1.0, 90.0, 0.0
    states, previous = [], None
    for t, behavior in enumerate(labels):
        if behavior != previous:  # new bout: draw its own parameters
            turn_sign = float(rng.choice([-1.0, 1.0]))
            walk_speed = float(rng.uniform(70, 130)) * style.body_length / 60
            turn_rate = float(rng.uniform(3.5, 6.0))  # rad/s
            previous = behavior
        phase += dt
        target = dict(length_scale=1.0, head_scale=1.0, head_angle=0.0, head_extension=1.0, width_scale=1.0)
        if behavior == "walk":
            state.heading += dt * (0.6 * math.sin(2.1 * phase) + _wall_avoidance(state, style))
            state.x += dt * walk_speed * math.cos(state.heading)
            state.y += dt * walk_speed * math.sin(state.heading)
            target["head_angle"] = 0.18 * math.sin(2 * math.pi * 3.0 * phase)
            state.tail_phase += dt * 9.0
        elif behavior in ("rest", SHAKE, RATTLE):  # a shake rolls the head about its own axis: unseen from above
            target["width_scale"] = 1.05 + 0.04 * math.sin(2 * math.pi * 1.0 * phase)
            if behavior == RATTLE:
                state.tail_phase += dt * 2 * math.pi * RATTLE_HZ
        elif behavior == "groom":
            target["head_extension"] = 0.55
            target["head_angle"] = 0.55 * math.sin(2 * math.pi * 5.0 * phase)
        elif behavior == "rear":
            target["length_scale"] = 0.62
            target["head_scale"] = 1.35
            target["head_angle"] = 0.1 * math.sin(2 * math.pi * 0.8 * phase)
        elif behavior == "turn":
            state.heading += dt * turn_sign * turn_rate
            target["head_angle"] = turn_sign * 0.35
            state.tail_phase += dt * 4.0
        rate = 0.6 if behavior in ("groom", "walk", "turn") else 0.3
        for key, value in target.items():
            setattr(state, key, _ease(getattr(state, key), value, rate))
        _clamp_inside_arena(state, style)
        states.append(AnimalState(**vars(state)))
    return states


def _wall_avoidance(state: AnimalState, style: VideoStyle) -> float:
    """Turn rate (rad/s) steering a walking animal away from walls it is heading into."""
    m = style.arena_margin * 2 + style.body_length  # the walls, as _clamp_inside_arena sees them
    look = 2.0 * style.body_length
    ahead_x = state.x + look * math.cos(state.heading)
    ahead_y = state.y + look * math.sin(state.heading)
    if m < ahead_x < FRAME_W - m and m < ahead_y < FRAME_H - m:
        return 0.0
    to_centre = math.atan2(FRAME_H / 2 - state.y, FRAME_W / 2 - state.x)
    diff = (to_centre - state.heading + math.pi) % (2 * math.pi) - math.pi
    return 2.0 * float(np.sign(diff))


def _clamp_inside_arena(state: AnimalState, style: VideoStyle) -> None:
    m = style.arena_margin * 2 + style.body_length
    state.x = float(np.clip(state.x, m, FRAME_W - m))
    state.y = float(np.clip(state.y, m, FRAME_H - m))


def animal_geometry(state: AnimalState, style: VideoStyle) -> dict:
    """Polygons of every body part plus the keypoints [K,2], all in frame pixels."""
    L = style.body_length * state.length_scale
    W = style.body_length * 0.42 * state.width_scale
    fwd = np.array([math.cos(state.heading), math.sin(state.heading)])
    left = np.array([math.sin(state.heading), -math.cos(state.heading)])
    centre = np.array([state.x, state.y])
    neck = centre + fwd * L * 0.45
    tail_base = centre - fwd * L * 0.5
    head_dir_angle = state.heading + state.head_angle
    hfwd = np.array([math.cos(head_dir_angle), math.sin(head_dir_angle)])
    hleft = np.array([math.sin(head_dir_angle), -math.cos(head_dir_angle)])
    head_len = style.body_length * 0.42 * state.head_scale
    head_centre = neck + hfwd * head_len * 0.45 * state.head_extension
    nose = head_centre + hfwd * head_len * 0.55
    ear_r = style.body_length * 0.09 * state.head_scale
    left_ear = head_centre - hfwd * head_len * 0.15 + hleft * head_len * 0.38
    right_ear = head_centre - hfwd * head_len * 0.15 - hleft * head_len * 0.38
    tail_pts = [tail_base]
    tail_len = style.body_length * 0.75
    for i in range(1, 9):
        s = i / 8
        sway = 0.25 * tail_len * s * s * math.sin(state.tail_phase + 2.5 * s)
        tail_pts.append(tail_base - fwd * tail_len * s + left * sway)
    body = _ellipse_poly(centre, L * 0.55, W * 0.5, state.heading)
    head = _ellipse_poly(head_centre, head_len * 0.55, head_len * 0.32, head_dir_angle)
    ears = [_ellipse_poly(p, ear_r, ear_r, 0.0) for p in (left_ear, right_ear)]
    keypoints = np.stack([nose, left_ear, right_ear, neck, tail_base, tail_pts[-1]]).astype(np.float32)
    tail = np.array(tail_pts, np.float32)
    all_pts = np.concatenate([body, head, *ears, tail])
    bbox = np.array([*all_pts.min(0), *all_pts.max(0)], np.float32)
    return dict(body=body, head=head, ears=ears, tail=tail, keypoints=keypoints, bbox=bbox)


def _ellipse_poly(centre, a: float, b: float, angle: float, n: int = 24) -> np.ndarray:
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    ca, sa = math.cos(angle), math.sin(angle)
    x, y = a * np.cos(t), b * np.sin(t)
    return np.stack([centre[0] + ca * x - sa * y, centre[1] + sa * x + ca * y], 1).astype(np.float32)


def draw_animal(img: np.ndarray, geometry: dict, style: VideoStyle) -> None:
    """Draw the animal in place (anti-aliased, sub-pixel via a shift of 4 bits)."""
    def fix(p):
        return np.round(np.asarray(p) * 16).astype(np.int32)
    tail_thickness = max(2, int(style.body_length * 0.06))
    cv2.polylines(img, [fix(geometry["tail"])], False, style.tail_bgr, tail_thickness, cv2.LINE_AA, 4)
    cv2.fillPoly(img, [fix(geometry["body"])], style.animal_bgr, cv2.LINE_AA, 4)
    cv2.fillPoly(img, [fix(e) for e in geometry["ears"]], style.ear_bgr, cv2.LINE_AA, 4)
    cv2.fillPoly(img, [fix(geometry["head"])], style.animal_bgr, cv2.LINE_AA, 4)
    eye = geometry["keypoints"][0] * 0.6 + geometry["keypoints"][3] * 0.4
    shade = tuple(int(c * 0.5) for c in style.animal_bgr)
    cv2.circle(img, tuple(fix(eye)), 2 * 16, shade, -1, cv2.LINE_AA, 4)


@dataclass
class SyntheticVideo:
    frames: list  # BGR uint8 frames (empty when rendered straight to a file)
    labels: list  # behaviour name per frame
    keypoints: np.ndarray  # [N,K,2] frame pixels
    bboxes: np.ndarray  # [N,4] xyxy frame pixels
    fps: float = FPS


def iter_rendered_frames(labels, seed: int, fps: float = FPS):
    """Yield (BGR frame, keypoints [K,2], bbox xyxy) per label, one frame at a time (long videos stay small)."""
    rng = np.random.default_rng(seed)
    style = sample_style(rng)
    floor = render_floor(style, rng)
    noise = [_noise_frame(rng, style.noise_sigma) for _ in range(_NOISE_BANK)]
    for i, state in enumerate(simulate_states(labels, style, rng, fps)):
        geometry = animal_geometry(state, style)
        img = floor.copy()
        draw_animal(img, geometry, style)
        img = cv2.GaussianBlur(img, (3, 3), 0)
        img = cv2.subtract(cv2.add(img, noise[i % _NOISE_BANK]), 8)  # noise is centred on +8
        yield img, geometry["keypoints"], geometry["bbox"]


def render_video(labels, seed: int, fps: float = FPS) -> SyntheticVideo:
    """Render one video in memory for the given per-frame labels; the look and motion follow from the seed."""
    frames, kps, boxes = zip(*iter_rendered_frames(labels, seed, fps))
    return SyntheticVideo(list(frames), list(labels), np.stack(kps), np.stack(boxes), fps)


def render_video_file(path, labels, seed: int, fps: float = FPS) -> SyntheticVideo:
    """Render straight into a video file, frame by frame; the returned truth has no frames (frames=[])."""
    kps, boxes = [], []

    def frames():
        for img, kp, box in iter_rendered_frames(labels, seed, fps):
            kps.append(kp)
            boxes.append(box)
            yield img
    write_video(path, frames(), fps)
    return SyntheticVideo([], list(labels), np.stack(kps), np.stack(boxes), fps)


def _noise_frame(rng: np.random.Generator, sigma: float) -> np.ndarray:
    return np.clip(rng.normal(8, sigma, size=(FRAME_H, FRAME_W, 3)), 0, 16).astype(np.uint8)


def write_video(path, frames, fps: float = FPS) -> None:
    """Write BGR frames as mp4 (mp4v), atomically: a temp file renamed into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), fps, (FRAME_W, FRAME_H))
    if not writer.isOpened():
        raise RuntimeError(f"OpenCV cannot write {path}: no mp4v encoder in this OpenCV build")
    for frame in frames:
        writer.write(frame)
    writer.release()
    os.replace(tmp, path)


def write_truth(path, video: SyntheticVideo) -> None:
    """Ground truth beside a video: <stem>.truth.npz with keypoints, bboxes, labels and names."""
    np.savez_compressed(path, keypoints=video.keypoints, bboxes=video.bboxes, labels=np.array(video.labels),
                        keypoint_names=np.array(KEYPOINT_NAMES), fps=video.fps)


def write_label_csv(path, labels) -> None:
    """Per-frame labels as `frame,behavior` (the long-video layout's label file)."""
    tmp = Path(path).with_suffix(".csv.tmp")
    with open(tmp, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["frame", "behavior"])
        writer.writerows(enumerate(labels))
    os.replace(tmp, path)


def make_class_folder_dataset(root, videos_per_class: int = 3, num_frames: int = 60, seed: int = 0,
                              behaviors=BEHAVIORS, truth: bool = True) -> list:
    """Layout 1: root/<behaviour>/clip_XX.mp4, each clip one behaviour. Returns the video paths."""
    paths = []
    for ci, behavior in enumerate(behaviors):
        for vi in range(videos_per_class):
            video = render_video([behavior] * num_frames, seed=seed * 100003 + ci * 1009 + vi)
            path = Path(root) / behavior / f"clip_{vi:02d}.mp4"
            write_video(path, video.frames, video.fps)
            if truth:
                write_truth(path.with_suffix(".truth.npz"), video)
            paths.append(path)
    return paths


def make_long_video_dataset(root, num_videos: int = 2, num_frames: int = 900, seed: int = 0,
                            truth: bool = True, min_bout: int = 20, max_bout: int = 75, behaviors=BEHAVIORS) -> list:
    """Layout 2: root/session_XX.mp4 with root/session_XX.csv (frame,behavior). Returns the video paths."""
    paths = []
    for vi in range(num_videos):
        rng = np.random.default_rng(seed * 7919 + vi)
        labels = sample_label_sequence(num_frames, rng, min_bout, max_bout, behaviors)
        path = Path(root) / f"session_{vi:02d}.mp4"
        video = render_video_file(path, labels, seed=seed * 7919 + vi + 500_000)
        write_label_csv(path.with_suffix(".csv"), labels)
        if truth:
            write_truth(path.with_suffix(".truth.npz"), video)
        paths.append(path)
    return paths


def simulate_pose(labels, seed: int, fps: float = FPS, noise_px: float = 1.5, dropout: float = 0.02,
                  heights: bool = False) -> tuple:
    """A tracker's output for one animal without rendering a frame: (keypoints [N,K,2] frame px with Gaussian
    noise of noise_px, likelihoods [N,K]: high, except a `dropout` share of points with a likelihood below 0.3).
    With `heights`, a 3D tracker's: the same keypoints and likelihoods (the same seed gives the same x, y) plus
    their heights [N,K] (keypoint_heights, with the same noise)."""
    rng = np.random.default_rng(seed)
    style = sample_style(rng)
    states = simulate_states(labels, style, rng, fps)
    keypoints = np.stack([animal_geometry(state, style)["keypoints"] for state in states])
    keypoints = keypoints + rng.normal(0, noise_px, keypoints.shape)
    likelihood = rng.uniform(0.85, 1.0, keypoints.shape[:2])
    dropped = rng.random(likelihood.shape) < dropout
    likelihood[dropped] = rng.uniform(0.0, 0.3, int(dropped.sum()))
    if not heights:
        return keypoints.astype(np.float32), likelihood.astype(np.float32)
    z = keypoint_heights(states, style, fps) + np.random.default_rng(seed + 1).normal(0, noise_px, likelihood.shape)
    return keypoints.astype(np.float32), likelihood.astype(np.float32), z.astype(np.float32)


# height of each keypoint (KEYPOINT_NAMES order) above the floor standing on all fours, and how much of the rise
# of a full rear it takes, in body lengths: the head rises most, the tail base stays on the floor
STANDING_HEIGHT = np.array([0.12, 0.2, 0.2, 0.22, 0.12, 0.0])
REAR_RISE = np.array([0.9, 0.8, 0.8, 0.6, 0.0, 0.0])
HEAD = np.array([1, 1, 1, 0, 0, 0], bool)


def keypoint_heights(states: list, style: VideoStyle, fps: float = FPS) -> np.ndarray:
    """Heights [N, K] px of the simulated animal's keypoints, consistent with its top-down pose: a rear (body
    foreshortened from above) lifts the head by up to 0.9 body lengths, grooming (head tucked) lowers the head and
    bobs it at 5 Hz; the other behaviours stand on all fours."""
    out = np.empty((len(states), len(KEYPOINT_NAMES)))
    for t, state in enumerate(states):
        rear = np.clip((1 - state.length_scale) / (1 - 0.62), 0, 1)
        tuck = np.clip((1 - state.head_extension) / 0.45, 0, 1)
        bob = 0.05 * tuck * math.sin(2 * math.pi * 5.0 * t / fps) - 0.08 * tuck
        out[t] = STANDING_HEIGHT + rear * REAR_RISE + HEAD * bob
    return out * style.body_length


IMU_CHANNELS = ("acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z")  # head frame: x forward, y left, z up
IMU_RATE = 200.0  # samples per second
METRES_PER_BODY_LENGTH = 0.09  # nose to tail base of a mouse
GRAVITY = 9.81  # m/s^2
SHAKE_HZ, SHAKE_ROLL_DEG = 18.0, 14.0  # a rodent's wet-dog shake: ~18 Hz, peak roll rates near 1600 deg/s
REAR_PITCH_DEG, TUCK_PITCH_DEG = 55.0, -30.0  # head pitch of a full rear, of grooming with the head tucked
MOUNT_TILT_DEG = 20.0  # an implant's axes are tilted from the head's by up to this much, turned by any angle


def simulate_imu(labels, seed: int, fps: float = FPS, rate: float = IMU_RATE, mounted: bool = True) -> tuple:
    """A head-mounted IMU on the animal that simulate_pose(labels, seed, fps) tracks (the same seed, the same
    motion): (time [N] s, values [N, 6] in IMU_CHANNELS order: specific force m/s^2, angular rate deg/s), sampled at
    `rate` over the recording. The head's path (the ears' midpoint, heights of keypoint_heights) and its yaw, pitch
    (rears lift, grooming tucks) and roll (shakes) are splined from frames to samples; the accelerometer reads the
    head's acceleration plus gravity, the gyroscope the head's angular rate, both in the sensor's own axes: each
    animal's implant sits turned about the vertical by any angle and tilted by up to MOUNT_TILT_DEG (`mounted`;
    False: aligned with the head); with white noise and a constant bias, the gyroscope's bias drifting as a random
    walk."""
    from scipy.interpolate import CubicSpline
    rng = np.random.default_rng(seed)
    style = sample_style(rng)
    states = simulate_states(labels, style, rng, fps)  # the draws simulate_pose makes first: the same motion
    metres = METRES_PER_BODY_LENGTH / style.body_length
    keypoints = np.stack([animal_geometry(state, style)["keypoints"] for state in states])
    heights = keypoint_heights(states, style, fps)
    head = np.stack([keypoints[:, 1:3, 0].mean(1), -keypoints[:, 1:3, 1].mean(1), heights[:, 1:3].mean(1)], 1) * metres
    rear = np.clip([(1 - st.length_scale) / (1 - 0.62) for st in states], 0, 1)
    tuck = np.clip([(1 - st.head_extension) / 0.45 for st in states], 0, 1)
    yaw = -np.unwrap([st.heading + st.head_angle for st in states])  # image y points down; the world's z up
    pitch = np.radians(REAR_PITCH_DEG * rear + TUCK_PITCH_DEG * tuck)
    frames = np.arange(len(states)) / fps
    time = np.arange(0.0, frames[-1] + 0.5 / rate, 1.0 / rate)
    accel = CubicSpline(frames, head)(time, 2)
    shaking = np.interp(time, frames, [float(label == SHAKE) for label in labels])
    roll = np.radians(SHAKE_ROLL_DEG) * shaking * np.sin(2 * np.pi * SHAKE_HZ * time)
    rotation = head_rotations(CubicSpline(frames, yaw)(time), CubicSpline(frames, pitch)(time), roll)
    force = np.einsum("nji,nj->ni", rotation, accel + [0.0, 0.0, GRAVITY])  # R^T (a - g), g pointing down
    spin = np.einsum("nji,njk->nik", rotation, np.gradient(rotation, time, axis=0))  # R^T dR/dt: skew(omega)
    gyro = np.degrees(np.stack([spin[:, 2, 1], spin[:, 0, 2], spin[:, 1, 0]], 1))
    if mounted:  # head axes -> the implant's: readings are R_mount^T v
        mount_rng = np.random.default_rng(seed + 3)
        tilt = np.radians(mount_rng.uniform(-MOUNT_TILT_DEG, MOUNT_TILT_DEG, 2))
        mount = head_rotations(np.array([mount_rng.uniform(-np.pi, np.pi)]), tilt[:1], tilt[1:])[0]
        force, gyro = force @ mount, gyro @ mount
    noise = np.random.default_rng(seed + 2)
    force += noise.normal(0, 0.1, 3) + noise.normal(0, 0.15, force.shape)
    drift = np.cumsum(noise.normal(0, 0.02, gyro.shape), 0)  # deg/s wandering over the recording
    gyro += noise.normal(0, 1.0, 3) + drift + noise.normal(0, 1.5, gyro.shape)
    return time, np.concatenate([force, gyro], 1).astype(np.float32)


def head_rotations(yaw: np.ndarray, pitch: np.ndarray, roll: np.ndarray) -> np.ndarray:
    """[N, 3, 3] head-to-world rotations (x forward, y left, z up): yaw about the world's z, then the nose raised
    by `pitch`, then rolled about the nose's axis by `roll`, radians."""
    cy, sy, cp, sp, cr, sr = np.cos(yaw), np.sin(yaw), np.cos(pitch), np.sin(pitch), np.cos(roll), np.sin(roll)
    one, zero = np.ones_like(yaw), np.zeros_like(yaw)
    rz = np.stack([np.stack([cy, -sy, zero], -1), np.stack([sy, cy, zero], -1), np.stack([zero, zero, one], -1)], 1)
    ry = np.stack([np.stack([cp, zero, -sp], -1), np.stack([zero, one, zero], -1), np.stack([sp, zero, cp], -1)], 1)
    rx = np.stack([np.stack([one, zero, zero], -1), np.stack([zero, cr, -sr], -1), np.stack([zero, sr, cr], -1)], 1)
    return rz @ ry @ rx


def make_pose_file_dataset(root, num_recordings: int = 2, num_frames: int = 900, seed: int = 0, animals: int = 1,
                           suffix: str = "DLC_synthetic.csv", fps: float = FPS, behaviors=BEHAVIORS,
                           three_d: bool = False, imu: bool = False) -> list:
    """Pose files without video, as a DeepLabCut or SLEAP user has them: root/session_XX<suffix> (DeepLabCut CSV or
    HDF5, or SLEAP `.analysis.h5`, by suffix) with root/session_XX.csv labels: `frame,behavior` for one animal,
    `frame,mouse0,mouse1...` for several (each animal its own behaviours). `three_d`: Anipose 3D CSVs (one animal;
    name them <stem>.anipose.csv) whose x and y are the 2D files' and z the heights (keypoint_heights). `imu`: a
    head-mounted IMU per recording, root/session_XX.sensors.csv (simulate_imu; one animal). Returns the pose file
    paths."""
    if (three_d or imu) and animals != 1:
        raise ValueError("3D pose files (Anipose) and the IMU are made for one animal")
    from utils.readers.pose_io import write_pose_file
    from utils.readers.sensors import write_sensor_csv
    paths = []
    for vi in range(num_recordings):
        names = [f"mouse{a}" for a in range(animals)]
        labels, xy, conf, z = {}, [], [], []
        for a, name in enumerate(names):
            rng = np.random.default_rng(seed * 7919 + vi * 31 + a)
            labels[name] = sample_label_sequence(num_frames, rng, behaviors=behaviors)
            motion_seed = seed * 7919 + vi * 31 + a + 500_000
            kp, lk, *height = simulate_pose(labels[name], motion_seed, fps, heights=three_d)
            if imu:
                write_sensor_csv(Path(root) / f"session_{vi:02d}.sensors.csv", *simulate_imu(labels[name], motion_seed,
                                 fps), IMU_CHANNELS)
            xy.append(kp)
            conf.append(lk)
            z += height
        path = Path(root) / f"session_{vi:02d}{suffix}"
        write_pose_file(path, np.stack(xy, 1), np.stack(conf, 1), KEYPOINT_NAMES, names, fps,
                        np.stack(z, 1) if three_d else None)
        if animals == 1:
            write_label_csv(Path(root) / f"session_{vi:02d}.csv", labels[names[0]])
        else:
            table = [["frame", *names]] + [[f, *(labels[n][f] for n in names)] for f in range(num_frames)]
            tmp = Path(root) / f".session_{vi:02d}.csv.tmp"
            with open(tmp, "w", newline="") as f:
                csv.writer(f).writerows(table)
            os.replace(tmp, Path(root) / f"session_{vi:02d}.csv")
        paths.append(path)
    return paths


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Generate synthetic top-down rodent videos with known labels.",
                                     add_help=add_help)
    parser.add_argument("--layout", choices=["class_folders", "long_videos", "pose_files"], default="class_folders",
                        help="class_folders: <root>/<behaviour>/clip.mp4; long_videos: <root>/video.mp4 + video.csv; "
                             "pose_files: <root>/videoDLC_synthetic.csv (DeepLabCut pose, no video) + video.csv")
    parser.add_argument("--output_root", required=True, help="folder to write the dataset into")
    parser.add_argument("--videos_per_class", type=int, default=3, help="class_folders: clips per behaviour")
    parser.add_argument("--num_videos", type=int, default=2, help="long_videos, pose_files: number of recordings")
    parser.add_argument("--animals", type=int, default=1, help="pose_files: animals per recording")
    parser.add_argument("--three_d", action="store_true",
                        help="pose_files: 3D keypoints (x, y, z) as Anipose CSVs <root>/video.anipose.csv, one animal")
    parser.add_argument("--imu", action="store_true",
                        help="pose_files: a head-mounted IMU per recording (<root>/video.sensors.csv, 200 Hz), the "
                             "behaviour 'shake' that only it shows and 'tail_rattle' that only the pose shows; one "
                             "animal")
    parser.add_argument("--num_frames", type=int, default=None,
                        help="frames per video (default 60 for clips, 900 for long videos)")
    parser.add_argument("--seed", type=int, default=0, help="random seed; the same seed gives the same videos")
    parser.add_argument("--no_truth", action="store_true", help="do not write <video>.truth.npz ground truth")
    return parser


def main(args) -> list:
    if args.layout == "class_folders":
        paths = make_class_folder_dataset(args.output_root, args.videos_per_class, args.num_frames or 60,
                                          args.seed, truth=not args.no_truth)
    elif args.layout == "long_videos":
        paths = make_long_video_dataset(args.output_root, args.num_videos, args.num_frames or 900, args.seed,
                                        truth=not args.no_truth)
    else:
        paths = make_pose_file_dataset(args.output_root, args.num_videos, args.num_frames or 900, args.seed,
                                       args.animals, suffix=".anipose.csv" if args.three_d else "DLC_synthetic.csv",
                                       three_d=args.three_d, imu=args.imu,
                                       behaviors=BEHAVIORS + SENSOR_BEHAVIORS if args.imu else BEHAVIORS)
    print(f"Wrote {len(paths)} videos under {args.output_root}")
    return paths


if __name__ == "__main__":
    main(get_args_parser().parse_args())
