"""Zones of the arena (polygons in frame pixels) and what the animal did in them: time in zone, entries, latency
to the first entry, and, when a classifier ran, the time of each behaviour in each zone.

Zones are given in the config (inference section, `zones`) as a YAML list, or on the command line as
`name:x,y;x,y;x,y` (one argument per zone):

    inference:
      zones:
        - {name: centre, polygon: [[160, 120], [480, 120], [480, 360], [160, 360]]}
        - {name: corner, polygon: [[0, 0], [100, 0], [0, 100]]}

The animal's position is its keypoint centre when keypoints exist, else its box centre. A frame where the
animal was not found is in no zone; an entry is a frame in the zone after a frame out of it (the first frame of
the video counts as an entry when the animal starts inside).
"""
from dataclasses import dataclass

import numpy as np
import pandas as pd
from matplotlib.path import Path as MplPath

from utils.errors import UserError

ZONE_FORMAT = "name:x,y;x,y;x,y (three or more corners, frame pixels) or in YAML {name: ..., polygon: [[x, y], ...]}"


@dataclass
class Zone:
    name: str
    polygon: np.ndarray  # [P, 2] frame pixels

    def contains(self, xy: np.ndarray) -> np.ndarray:
        """[N] bool: which of the [N, 2] points lie inside (NaN points, a missed animal: False)."""
        xy = np.asarray(xy, np.float64)
        known = np.isfinite(xy).all(1)
        inside = np.zeros(len(xy), bool)
        inside[known] = MplPath(self.polygon).contains_points(xy[known])
        return inside


def parse_zones(values) -> list:
    """[Zone] from the config's `zones`: dicts {name, polygon} (YAML) or strings name:x,y;x,y;x,y (command line)."""
    zones = [_parse_zone(v) for v in values or []]
    names = [z.name for z in zones]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise UserError(f"zones: the name {repeated[0]!r} is used twice; give every zone its own name")
    return zones


def zone_text(value: dict) -> str:
    """A YAML zone {name, polygon} in its command-line form name:x,y;x,y;x,y (the dashboard's text field)."""
    return f"{value.get('name')}:" + ";".join(",".join(f"{c:g}" for c in point) for point in value.get("polygon", []))


def _parse_zone(value) -> Zone:
    try:
        if isinstance(value, dict):
            name, points = value["name"], value["polygon"]
        else:
            name, _, corners = str(value).partition(":")
            points = [[float(c) for c in corner.split(",")] for corner in corners.split(";") if corner.strip()]
        polygon = np.asarray(points, np.float64)
    except (KeyError, TypeError, ValueError):
        raise UserError(f"zones: cannot read {value!r}; expected {ZONE_FORMAT}") from None
    if not str(name).strip() or polygon.ndim != 2 or polygon.shape[1] != 2 or len(polygon) < 3 \
            or not np.isfinite(polygon).all():
        raise UserError(f"zones: {value!r} is not a polygon; expected {ZONE_FORMAT}")
    return Zone(str(name).strip(), polygon)


def zone_table(xy: np.ndarray, zones: list, fps: float, labels=None, class_names=()) -> pd.DataFrame:
    """One row per zone (behaviour 'all'), and with labels one more row per zone and behaviour: seconds and
    percent of the video in the zone, entries, latency to the first entry (s; empty if never entered), and for
    behaviour rows the share of that behaviour's time spent in the zone."""
    rows, total = [], len(xy)
    labels = None if labels is None else np.asarray(labels, dtype=object)
    for zone in zones:
        inside = zone.contains(xy)
        rows.append(_zone_row(zone.name, "all", inside, np.ones(total, bool), fps, total))
        for name in class_names if labels is not None else ():
            rows.append(_zone_row(zone.name, name, inside & (labels == name), labels == name, fps, total))
    return pd.DataFrame(rows).round(4)


def _zone_row(zone: str, behavior: str, inside: np.ndarray, of_behavior: np.ndarray, fps: float,
              total: int) -> dict:
    entries = np.flatnonzero(inside & ~np.concatenate([[False], inside[:-1]]))
    return {"zone": zone, "behavior": behavior, "time_in_zone_s": inside.sum() / fps,
            "percent_of_video": 100 * inside.sum() / total if total else 0.0,
            "percent_of_behavior": 100 * inside.sum() / of_behavior.sum() if of_behavior.sum() else np.nan,
            "entries": len(entries), "latency_to_first_entry_s": entries[0] / fps if len(entries) else np.nan}
