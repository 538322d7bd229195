"""sequence_manifest.json: the index of prepared windows that training reads (format: docs/formats.md)."""
import json
from pathlib import Path

from utils.errors import UserError
from utils.io import atomic_write_json

SCHEMA_VERSION = 3  # 3: crops in one store per video (utils.data.crop_store), not in each window's npz
READABLE = (2, 3)  # 2: windows carry scale_ref (utils.features.motion) and meta body_axis, and their frames in the npz


def write_manifest(path, manifest: dict) -> None:
    atomic_write_json(path, manifest)


def load_manifest(path) -> dict:
    """Read and check a manifest; npz paths stay relative (resolve with manifest_dir / entry['npz'])."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"manifest not found: {path}; run prepare_sequences_from_yolo.py first or fix --manifest_path")
    try:
        manifest = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise UserError(f"{path} is not valid JSON ({exc}); re-run preprocessing") from None
    version = manifest.get("schema_version")
    if version not in READABLE:
        raise UserError(f"{path} has schema_version {version}; this BehaviorScope reads {READABLE}: "
                        f"re-run prepare_sequences_from_yolo.py")
    for key in ("class_to_idx", "idx_to_class", "meta", "splits"):
        if key not in manifest:
            raise UserError(f"{path} lacks '{key}'; re-run prepare_sequences_from_yolo.py")
    return manifest
