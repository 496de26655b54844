"""Device choice: every function that computes takes ``device`` and resolves it here."""

from __future__ import annotations

from contextlib import contextmanager

import torch

from .errors import SogError


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` is CUDA when present, else CPU; ``"cuda"`` without a GPU is an error."""
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise SogError("--device cuda was asked for, but no CUDA GPU is available")
    try:
        return torch.device(device)
    except RuntimeError:
        raise SogError(f"unknown device {device!r} (use auto, cpu or cuda)") from None


@contextmanager
def one_cpu_thread(device: str | torch.device = "cpu"):
    """Run the block with torch on one CPU thread (on a GPU ``device``: unchanged), restoring the count after.

    torch splits its parallel reductions by the thread count, so a float sum, and every decision taken on one (the
    sorter's learned orders, the SH k-means, the importance plan, the rate search's probes), depended on how many
    cores the machine has: tarot's default file was 1,189,133 B with one thread and 1,188,703 B with two. One
    thread gives the same bytes for any core count; the values whose last bit the CPU's instruction set changes are
    made robust where they steer a choice (`sog.stable`)."""
    if resolve_device(device).type != "cpu":
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)
