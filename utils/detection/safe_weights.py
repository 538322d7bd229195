"""Detector weights checked before anything in them runs.

An Ultralytics `.pt` is a pickle, and Ultralytics unpickles detector checkpoints with `weights_only=False`: a pickle
can name any function (os.system, builtins.exec) and have it called while loading. Weights travel between labs, so
every `.pt` is checked first: torch lists the globals the pickle names without unpickling anything
(`torch.serialization.get_unsafe_globals_in_checkpoint`, which skips the tensors and plain types torch already
trusts), and each must be a layer class (a torch.nn.Module subclass from torch.nn or ultralytics.nn) or one of the
few plain classes a training checkpoint holds. Anything else is refused with one line naming it; nothing ran.
Ultralytics' own restricted loading (ULTRALYTICS_SAFE_LOAD, the same weights_only unpickler with an allow-list) is
switched on as well, so the load itself is restricted where Ultralytics is imported after this module.
Exports (ONNX, OpenVINO IR) hold no pickle: ONNX Runtime and OpenVINO read them, their metadata with
ast.literal_eval / YAML (Ultralytics' backends), and need no check.
"""
import importlib
import os
from pathlib import Path

from utils.errors import UserError

os.environ.setdefault("ULTRALYTICS_SAFE_LOAD", "1")

LAYER_PACKAGES = ("torch.nn.modules.", "ultralytics.nn.")
# plain classes of training checkpoints (train_args, the loss and assigner a last.pt may carry), none with side effects
PLAIN_CLASSES = {"collections.OrderedDict", "ultralytics.utils.IterableSimpleNamespace", "types.SimpleNamespace",
                 "pathlib.PosixPath", "pathlib.WindowsPath", "numpy.dtype", "numpy.core.multiarray.scalar",
                 "numpy._core.multiarray.scalar", "numpy.core.multiarray._reconstruct",
                 "numpy._core.multiarray._reconstruct", "numpy.ndarray"}
PLAIN_MODULES = ("ultralytics.utils.loss.", "ultralytics.utils.tal.", "numpy.dtypes.")


def check_detector_weights(path) -> None:
    """Refuse a `.pt` whose pickle names anything but layers and plain data (UserError naming the first such name),
    before any of it is unpickled. Other suffixes (exports) are left to their runtimes."""
    path = Path(path)
    if path.suffix.lower() != ".pt" or not path.is_file():
        return
    import torch
    try:
        names = torch.serialization.get_unsafe_globals_in_checkpoint(str(path))
    except (ValueError, RuntimeError, OSError) as exc:
        raise UserError(f"detector weights {path} are not a PyTorch zip checkpoint ({type(exc).__name__}): damaged, "
                        f"or saved in the legacy pickle format, which can run code when loaded; copy or export the "
                        f"weights again (Ultralytics saves the zip format)") from None
    refused = sorted(name for name in names if not admitted(name))
    if refused:
        raise UserError(f"detector weights {path} refused, nothing in them was run: the file names "
                        f"{', '.join(refused[:3])}{' ...' if len(refused) > 3 else ''}, which a detector checkpoint "
                        f"never holds (it could run code when loaded); use weights from a source you trust, or "
                        f"train your own with train_detector.py")


def admitted(name: str) -> bool:
    """A layer class (an nn.Module subclass from torch.nn / ultralytics.nn, looked up in the installed packages) or
    a plain class of training checkpoints; never a function, which a pickle could call with any arguments."""
    if name in PLAIN_CLASSES:
        return True
    if not name.startswith(LAYER_PACKAGES + PLAIN_MODULES):
        return False
    module, _, attr = name.rpartition(".")
    try:
        obj = getattr(importlib.import_module(module), attr, None)
    except ImportError:
        return False
    import torch
    return isinstance(obj, type) and (name.startswith(PLAIN_MODULES) or issubclass(obj, torch.nn.Module))
