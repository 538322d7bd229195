"""Training on several processes (GPUs, or CPU processes) with torchrun and DistributedDataParallel.

    torchrun --standalone --nproc_per_node 4 train_behavior_lstm.py --manifest_path ... (every usual flag)

torchrun starts one process per GPU (or per CPU share) and sets RANK, WORLD_SIZE and LOCAL_RANK; `start` joins them
(NCCL on GPUs, gloo on CPUs) and gives each process its own GPU (cuda:LOCAL_RANK) or its share of the CPU cores.
Every process holds the whole model and data; each epoch's shuffled order (the same on every process: it depends
on the seed and epoch only) is dealt out in turn, each process takes `batch_size / processes` windows per step, and
DistributedDataParallel averages the gradients, so a step sees the same `batch_size` windows as one process would
and the learning rate needs no change. Validation runs whole on every process (the weights are the same on all),
so the best epoch, early stopping and the scheduler agree without messages. Only rank 0 writes the run folder
(checkpoints, metrics, log, evaluations); the others keep theirs in a temporary folder that is deleted at the end.
A stop (Ctrl-C, SIGTERM, the stop file) on any process stops all of them at the same batch.
"""
import os
from contextlib import contextmanager

import torch
import torch.distributed as dist


def world_size() -> int:
    """Processes torchrun started (1 without torchrun)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else int(os.environ.get("RANK", "0"))


def is_main() -> bool:
    return rank() == 0


def active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def start(device: str) -> str:
    """Join torchrun's processes when there are several; returns this process's device: cuda:LOCAL_RANK on GPUs,
    `device` otherwise (its threads: the cores this process may use divided among the processes on this machine)."""
    if world_size() == 1 or active():
        return device
    from utils.device import set_cpu_threads, usable_cpus
    local_rank, local_size = int(os.environ.get("LOCAL_RANK", "0")), int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    if device.startswith("cuda"):
        if torch.cuda.device_count() < local_size:
            from utils.errors import UserError
            raise UserError(f"torchrun started {local_size} processes on this machine, but it has "
                            f"{torch.cuda.device_count()} GPU(s); use --nproc_per_node {torch.cuda.device_count()}")
        device = f"cuda:{local_rank}"
        torch.cuda.set_device(device)
    else:
        set_cpu_threads(max(usable_cpus() // local_size, 1))
    dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
    return device


def describe(device: str) -> str:
    """This process among torchrun's, for the log ('' with one process)."""
    if not active():
        return ""
    return f"process {dist.get_rank()} of {dist.get_world_size()} ({dist.get_backend()}, {device})"


def finish() -> None:
    if active():
        dist.barrier()
        dist.destroy_process_group()


def from_main(value):
    """Rank 0's `value` on every process (e.g. a run name made from the clock)."""
    if not active():
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def average(value: float) -> float:
    """The mean of `value` over the processes (e.g. each one's training loss on its share)."""
    if not active():
        return value
    total = torch.tensor([float(value)], device="cuda" if dist.get_backend() == "nccl" else "cpu")
    dist.all_reduce(total)
    return total.item() / dist.get_world_size()


def shard(indices: list) -> list:
    """This process's share of an epoch's order (the same order on every process): every Nth item from its rank,
    the order first padded with its own beginning so each process gets as many items (and steps) as the others."""
    if not active():
        return list(indices)
    size = dist.get_world_size()
    padded = list(indices) + list(indices)[:(-len(indices)) % size]
    return padded[dist.get_rank()::size]


def local_batch(batch_size: int) -> int:
    """Windows per process and step: the batch shared among the processes (at least 1)."""
    return max(batch_size // (dist.get_world_size() if active() else 1), 1)


def any_process(flag: bool) -> bool:
    """True on every process when `flag` is true on any (a collective call: every process must make it)."""
    if not active():
        return bool(flag)
    value = torch.tensor([1.0 if flag else 0.0], device="cuda" if dist.get_backend() == "nccl" else "cpu")
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item())


class Forward(torch.nn.Module):
    """`step(fn, *args)` runs fn(module, *args) through this module's forward, so DistributedDataParallel (which only
    sees forward) prepares the gradient averaging for any computation of the model: a forward, the head on cached
    features, a masked forward."""

    def __init__(self, module: torch.nn.Module):
        super().__init__()
        self.module = module

    def forward(self, fn, *args, **kwargs):
        return fn(self.module, *args, **kwargs)


def synced(module: torch.nn.Module, device: str) -> torch.nn.Module:
    """What a training step calls (see Forward): gradients averaged over the processes when there are several."""
    step = Forward(module)
    if not active():
        return step
    from torch.nn.parallel import DistributedDataParallel
    ids = [torch.device(device).index] if device.startswith("cuda") else None
    # some settings leave parts of a model out of the loss (a stream not used, the masked-feature head)
    return DistributedDataParallel(step, device_ids=ids, find_unused_parameters=True)


@contextmanager
def main_process_files(run_dir):
    """The folder this process writes in: the run folder on rank 0, a temporary one elsewhere (deleted after)."""
    if is_main():
        yield run_dir
        return
    import tempfile
    from pathlib import Path
    with tempfile.TemporaryDirectory(prefix=f"rank{rank()}_") as tmp:
        yield Path(tmp)
