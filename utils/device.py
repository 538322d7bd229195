"""Device and thread selection shared by every stage."""
import os

import torch

from utils.errors import UserError


def resolve_device(name: str) -> str:
    """'auto' -> cuda when available else cpu; 'cuda:N' checked against the GPUs present."""
    name = (name or "auto").strip().lower()
    if name == "auto":
        return "cuda:0" if torch.cuda.is_available() else "cpu"
    if name == "cpu":
        return "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise UserError(f"--device {name} asked for, but no CUDA GPU is available; use --device cpu or auto")
        index = int(name.split(":")[1]) if ":" in name else 0
        if index >= torch.cuda.device_count():
            raise UserError(f"--device {name}: only {torch.cuda.device_count()} GPU(s) present; use cuda:0..")
        return f"cuda:{index}"
    raise UserError(f"--device {name!r} not understood; use auto, cpu, cuda or cuda:N")


def usable_cpus() -> int:
    """The cores this process may run on: a SLURM task, a container or a pinned worker is given fewer than the
    machine has (os.cpu_count), and one thread per machine core would then fight over the given ones."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # macOS and Windows have no affinity call
        return os.cpu_count() or 1


def set_cpu_threads(num_threads: int = 0) -> int:
    """Set torch's CPU threads (0 = every usable core). Call again after Ultralytics first predicts: it lowers them."""
    threads = num_threads or usable_cpus()
    torch.set_num_threads(threads)
    return threads
