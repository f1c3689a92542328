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


# ---- the precision a run trains in ---------------------------------------------------------------------
def amp_choice(amp) -> str:
    """A run's `amp` as auto, on or off: runs made before the automatic default recorded true or false."""
    return ("on" if amp else "off") if isinstance(amp, bool) else amp


@dataclass(frozen=True)
class Precision:
    bf16: bool         # the forward pass under bfloat16 autocast; the weights stay float32 either way
    why: str           # in words: what decided it

    @property
    def label(self) -> str:
        return "bfloat16 (mixed)" if self.bf16 else "float32"

    def to_dict(self) -> dict:
        return {"amp": self.bf16, "dtype": "bfloat16" if self.bf16 else "float32", "why": self.why}


def precision(amp, device: torch.device) -> Precision:
    """What a run with this `amp` (auto, on, off) trains in on `device`. auto: bfloat16 where the hardware
    computes it natively (a CPU with avx512_bf16, AMX or ARM bf16; a CUDA GPU that has bfloat16 units,
    Ampere and later), float32 elsewhere (Apple MPS, older GPUs, other CPUs, where bfloat16 is emulated).
    on where it would be emulated on a CPU is refused by the run's check (TrainConfig.validate)."""
    amp = amp_choice(amp)
    if amp == "off":
        return Precision(False, "mixed precision off: float32 throughout")
    if device.type == "cuda":
        native = torch.cuda.is_bf16_supported(including_emulation=False)
        gpu = torch.cuda.get_device_name(device)
        if amp == "on":
            return Precision(True, f"mixed precision on, as asked ({gpu})")
        return Precision(native, f"automatic: {gpu} " + ("computes bfloat16 natively" if native else
                                                        "has no native bfloat16, so float32"))
    if device.type == "cpu":
        native, why = cpu_bf16()
        if amp == "on":
            return Precision(True, f"mixed precision on, as asked: {why}")
        return Precision(native, f"automatic: {why}" + ("" if native else "; so float32"))
    return Precision(False, f"automatic: float32 on {device.type} (mixed precision here is for CUDA GPUs "
                            f"and CPUs with native bfloat16)")
