"""A second, deliberately different pose generator: used only to test, never to train.

A model that scores well on the generator it was tuned on may have learned that generator rather than the
behaviours. The project's own generator (utils.synthetic) draws a flat animal seen from straight above: a rear is
a foreshortened body with an enlarged head, grooming a tucked head swinging at 5 Hz, every animal mouse-sized in
the same frame. This one shares only the five behaviour names and the six keypoint names:

- **Body**: built in 3D (centimetres) from a hip, a spine to the neck, a head and a tail, with each animal's own
  proportions; a mouse (7-10 cm nose to tail base, arena 40-60 cm) or a rat (15-22 cm, arena 70-100 cm).
- **Camera**: a pinhole 60-200 cm above the floor (so whatever rises is magnified by perspective, more under a low
  camera) with barrel lens distortion of up to a quarter at the image corners, its centre off the arena's.
- **Kinematics**: walking at 0.8-2.5 body lengths/s with a stride wobble at 3-5 Hz on a wandering path; rest hunched,
  with slow head drift; grooming pitches the head down and circles the nose at 3-8 Hz, or licks a flank (head bent
  back 75-115 degrees); a rear pitches the body 35-75 degrees about the hips (its projection depends on where the
  animal stands and the camera's height); turning bends the spine into the turn at 2.5-6.5 rad/s about a point
  between the hips and the middle of the spine. Postures change with a time constant in seconds, not per frame;
  rhythms ride on top.
- **Tracker**: 1-2.5 px of noise and 3% of points dropped (likelihood below 0.3).
"""
import math
from dataclasses import dataclass

import numpy as np

from utils.synthetic import FRAME_H, FRAME_W

POSTURE_TIME_S = 0.12  # how fast a posture follows the behaviour (time constant)


@dataclass
class Animal:
    """One recording's animal and camera: lengths in cm, the camera in cm above the floor."""
    spine: float  # hip (tail base) to neck
    head: float  # neck to nose
    tail: float
    ear_span: float
    hip_height: float
    arena: float  # side of the square arena
    camera_height: float
    focal: float  # px
    distortion: float  # k1 of r' = r (1 + k1 r^2), r in half-diagonals; negative: barrel
    centre_offset: tuple  # px, the image centre's offset from the arena's

    @property
    def body_length(self) -> float:
        return self.spine + self.head


def sample_animal(rng: np.random.Generator) -> Animal:
    rat = rng.random() < 0.5
    length = rng.uniform(15, 22) if rat else rng.uniform(7, 10)
    head_share = rng.uniform(0.3, 0.42)
    arena = rng.uniform(70, 100) if rat else rng.uniform(40, 60)
    camera_height = rng.uniform(60, 200)
    return Animal(spine=length * (1 - head_share), head=length * head_share, tail=length * rng.uniform(0.8, 1.15),
                  ear_span=length * head_share * rng.uniform(0.45, 0.7), hip_height=length * rng.uniform(0.08, 0.14),
                  arena=arena, camera_height=camera_height,
                  focal=rng.uniform(0.8, 0.95) * FRAME_H * camera_height / arena,
                  distortion=-rng.uniform(0.0, 0.25), centre_offset=tuple(rng.uniform(-25, 25, 2)))


@dataclass
class Posture:
    """What the behaviour sets; eased towards its target every frame."""
    pitch: float = 0.08  # body pitch about the hips, radians (up is positive)
    bend: float = 0.0  # spine bend, radians (positive: to the animal's left)
    head_yaw: float = 0.0
    head_pitch: float = -0.15
    reach: float = 1.0  # share of the head's length between neck and nose (< 1 tucked in)
    spine_scale: float = 1.0  # < 1 hunched


def simulate_variant_pose(labels, seed: int, fps: float = 30.0) -> tuple:
    """(keypoints [N, 6, 2] px in utils.synthetic.KEYPOINT_NAMES order, likelihoods [N, 6], Animal) for one
    recording of per-frame behaviour labels."""
    rng = np.random.default_rng(seed)
    animal = sample_animal(rng)
    points = np.stack(list(_keypoints_3d(labels, animal, rng, fps)))
    xy = project(points, animal)
    xy = xy + rng.normal(0, rng.uniform(1.0, 2.5), xy.shape)
    likelihood = rng.uniform(0.8, 1.0, xy.shape[:2])
    dropped = rng.random(likelihood.shape) < 0.03
    likelihood[dropped] = rng.uniform(0.0, 0.3, int(dropped.sum()))
    return xy.astype(np.float32), likelihood.astype(np.float32), animal


def project(points: np.ndarray, animal: Animal) -> np.ndarray:
    """World points [..., 3] (cm; x right, y down the image, z up) to distorted pixels [..., 2]."""
    depth = animal.camera_height - points[..., 2]
    centre = np.array([FRAME_W / 2, FRAME_H / 2])
    offset = animal.focal * points[..., :2] / depth[..., None] + np.asarray(animal.centre_offset)
    r2 = (offset ** 2).sum(-1, keepdims=True) / (centre ** 2).sum()
    return centre + offset * (1 + animal.distortion * r2)


def _targets(behavior: str, bout: dict, t: float) -> tuple:
    """(the posture the behaviour eases towards, {field: fast oscillation added on top}): a 5 Hz nose circle
    passed through the posture's easing would be damped to a quarter, so rhythms are added after it."""
    if behavior == "walk":
        stride = 2 * math.pi * bout["stride_hz"] * t
        return Posture(), {"bend": 0.08 * math.sin(stride), "head_yaw": 0.12 * math.sin(stride + 1.0)}
    if behavior == "rest":
        return Posture(pitch=0.04, head_pitch=-0.3, reach=0.9, spine_scale=0.85,
                       head_yaw=bout["drift"] * math.sin(0.6 * t)), {}
    circle = 2 * math.pi * bout["groom_hz"] * t
    if behavior == "groom" and bout["flank"]:
        return (Posture(bend=0.35 * bout["side"], head_yaw=bout["side"] * bout["flank_angle"], head_pitch=-0.5,
                        reach=0.7, spine_scale=0.85),
                {"reach": 0.1 * math.sin(circle), "head_pitch": 0.15 * math.cos(circle)})
    if behavior == "groom":
        return (Posture(pitch=0.2, head_pitch=-1.0, reach=0.6, spine_scale=0.85),
                {"head_pitch": 0.25 * math.sin(circle), "head_yaw": 0.4 * math.cos(circle)})
    if behavior == "rear":
        return Posture(pitch=bout["rear_angle"], head_pitch=bout["head_up"]), \
            {"head_yaw": 0.15 * math.sin(2 * math.pi * 0.7 * t)}
    if behavior == "turn":
        # heading grows with side = +1: a turn to the animal's right, so the spine and head bend right (negative)
        return Posture(bend=-0.5 * bout["side"], head_yaw=-0.35 * bout["side"]), {}
    raise ValueError(f"the variant generator has no behaviour {behavior!r}")


def _new_bout(rng: np.random.Generator) -> dict:
    return dict(speed=rng.uniform(0.8, 2.5), stride_hz=rng.uniform(3, 5), drift=rng.uniform(0.05, 0.2),
                groom_hz=rng.uniform(3, 8), flank=rng.random() < 0.4, side=float(rng.choice([-1.0, 1.0])),
                flank_angle=math.radians(rng.uniform(75, 115)), rear_angle=math.radians(rng.uniform(35, 75)),
                head_up=math.radians(rng.uniform(0, 20)), turn_rate=rng.uniform(2.5, 6.5),
                pivot=rng.uniform(0.0, 0.5))  # where along the spine a turn pivots: 0 the hips, 0.5 its middle


def _keypoints_3d(labels, animal: Animal, rng: np.random.Generator, fps: float):
    """Per frame the six keypoints [6, 3] in world cm."""
    dt, half = 1.0 / fps, animal.arena / 2 - animal.body_length
    x, y = rng.uniform(-half, half, 2)
    heading, wander, tail_phase = rng.uniform(-math.pi, math.pi), 0.0, 0.0
    posture, ease = Posture(), 1 - math.exp(-dt / POSTURE_TIME_S)
    bout, previous = None, None
    for i, behavior in enumerate(labels):
        if behavior != previous:
            bout, previous, start = _new_bout(rng), behavior, i
        t = (i - start) * dt
        if behavior == "walk":
            wander = 0.9 * wander + rng.normal(0, 0.6)
            heading += dt * (wander + _steer_from_walls(x, y, heading, half))
            step = bout["speed"] * animal.body_length * dt
            x, y = x + step * math.cos(heading), y + step * math.sin(heading)
            tail_phase += dt * 2 * math.pi * bout["stride_hz"] / 2
        elif behavior == "turn":  # about a point `pivot` of the spine ahead of the hips
            turned = dt * bout["side"] * bout["turn_rate"]
            reach = bout["pivot"] * animal.spine
            x += reach * (math.cos(heading) - math.cos(heading + turned))
            y += reach * (math.sin(heading) - math.sin(heading + turned))
            heading += turned
            tail_phase += dt * 3.0
        x, y = float(np.clip(x, -half, half)), float(np.clip(y, -half, half))
        target, rhythm = _targets(behavior, bout, t)
        for name, value in vars(target).items():
            setattr(posture, name, getattr(posture, name) + ease * (value - getattr(posture, name)))
        ramp = min(1.0, t / POSTURE_TIME_S)  # a rhythm starts with the bout's posture, not with a jump
        shown = Posture(**{name: value + ramp * rhythm.get(name, 0.0) for name, value in vars(posture).items()})
        yield _skeleton(animal, x, y, heading, shown, tail_phase)


def _steer_from_walls(x: float, y: float, heading: float, half: float) -> float:
    ahead = np.array([x, y]) + 0.15 * half * np.array([math.cos(heading), math.sin(heading)])
    if np.all(np.abs(ahead) < 0.85 * half):
        return 0.0
    diff = (math.atan2(-y, -x) - heading + math.pi) % (2 * math.pi) - math.pi
    return 2.5 * math.copysign(1.0, diff)


def _direction(yaw: float, pitch: float = 0.0) -> np.ndarray:
    return np.array([math.cos(pitch) * math.cos(yaw), math.cos(pitch) * math.sin(yaw), math.sin(pitch)])


def _skeleton(animal: Animal, x: float, y: float, heading: float, p: Posture, tail_phase: float) -> np.ndarray:
    """nose, left_ear, right_ear, neck, tail_base, tail_tip [6, 3]. The animal's left is the image's left of its
    heading, as in utils.synthetic (x right, y down: left of heading h is (sin h, -cos h))."""
    hip = np.array([x, y, animal.hip_height])
    spine_yaw = heading - p.bend  # bending left turns the front towards -y of the heading frame
    neck = hip + animal.spine * p.spine_scale * _direction(spine_yaw, p.pitch)
    head_yaw, head_pitch = spine_yaw - p.bend - p.head_yaw, p.pitch + p.head_pitch
    head_dir = _direction(head_yaw, head_pitch)
    nose = neck + animal.head * p.reach * head_dir
    head_left = np.array([math.sin(head_yaw), -math.cos(head_yaw), 0.0])
    ear_centre = neck + 0.3 * animal.head * head_dir + np.array([0, 0, 0.06 * animal.head])
    tail_base = np.array([x, y, 0.6 * animal.hip_height])
    tail_yaw = heading + math.pi + p.bend + 0.35 * math.sin(tail_phase)
    tail_tip = np.array([*(tail_base[:2] + animal.tail * _direction(tail_yaw)[:2]), 0.0])
    return np.stack([nose, ear_centre + 0.5 * animal.ear_span * head_left,
                     ear_centre - 0.5 * animal.ear_span * head_left, neck, tail_base, tail_tip])
