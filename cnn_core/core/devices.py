"""Which device trains: CUDA, then Apple MPS, then CPU; and how to describe it."""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import torch

_DEVICE_RE = re.compile(r"^(auto|cpu|mps|cuda(:\d{1,2})?)$")


@dataclass(frozen=True)
class DeviceInfo:
    name: str          # "cuda:0", "mps", "cpu"
    kind: str          # "CUDA" | "MPS" | "CPU"
    label: str         # what a person reads: "NVIDIA H100 (79.1 GiB)", "Apple MPS", "CPU (2 threads)"


def _mps_available() -> bool:
    return bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())


def device_error(name: str) -> str | None:
    """The reason `name` cannot be used on this machine, or None when it can."""
    if not isinstance(name, str) or not _DEVICE_RE.match(name):
        return f"device must be one of auto, cpu, cuda, cuda:N, mps; got {name!r}"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            return f"device {name!r} asked for, but this machine has no CUDA GPU (use auto or cpu)"
        index = int(name.split(":")[1]) if ":" in name else 0
        if index >= torch.cuda.device_count():
            return f"device {name!r} asked for, but only {torch.cuda.device_count()} CUDA GPU(s) exist"
    if name == "mps" and not _mps_available():
        return "device 'mps' asked for, but Apple MPS is not available here (use auto or cpu)"
    return None


def available_names() -> tuple[str, ...]:
    """The device names this machine can train on: auto, cpu, then cuda (and cuda:N when several), mps."""
    names = ["auto", "cpu"]
    if torch.cuda.is_available():
        n = min(torch.cuda.device_count(), 16)
        names += ["cuda"] + ([f"cuda:{i}" for i in range(n)] if n > 1 else [])
    if _mps_available():
        names.append("mps")
    return tuple(names)


def resolve_device(name: str = "auto") -> torch.device:
    """`auto` picks CUDA, then MPS, then CPU; a named device must exist (ValueError otherwise)."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps" if _mps_available() else "cpu")
    error = device_error(name)
    if error:
        raise ValueError(error)
    return torch.device(name)


def describe_device(name: str = "auto") -> DeviceInfo:
    """Name, kind and a human label (GPU name and memory where present)."""
    device = resolve_device(name)
    if device.type == "cuda":
        index = device.index or 0
        props = torch.cuda.get_device_properties(index)
        label = f"{props.name} ({props.total_memory / 2**30:.1f} GiB)"
        return DeviceInfo(f"cuda:{index}", "CUDA", label)
    if device.type == "mps":
        return DeviceInfo("mps", "MPS", "Apple MPS")
    return DeviceInfo("cpu", "CPU", f"CPU ({torch.get_num_threads()} threads)")


# ---- bfloat16 on the CPU ------------------------------------------------------------------------------
BF16_FLAGS = ("amx_bf16", "avx512_bf16", "bf16")    # x86 AMX, x86 AVX-512 BF16, ARM (Features: bf16)


def bf16_flag(cpuinfo: str) -> str | None:
    """The flag in /proc/cpuinfo's text that says the CPU computes bfloat16 itself (x86 'flags', ARM
    'Features'), or None."""
    for line in cpuinfo.splitlines():
        if line.startswith(("flags", "Features")):
            found = set(line.partition(":")[2].split())
            return next((f for f in BF16_FLAGS if f in found), None)
    return None


def cpu_bf16() -> tuple[bool, str]:
    """(whether this CPU computes bfloat16 natively, why, in words). Without it bfloat16 is emulated: slower
    than float32, so mixed precision on the CPU is refused there."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False, "this system does not say whether its CPU computes bfloat16 (no /proc/cpuinfo)"
    flag = bf16_flag(text)
    if flag:
        return True, f"this CPU computes bfloat16 natively ({flag})"
    return False, ("this CPU has no native bfloat16 (no avx512_bf16, AMX or ARM bf16): it would be emulated, "
                   "slower than float32")
