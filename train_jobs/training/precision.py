"""Mixed precision: bf16 autocast where the hardware runs it natively, fp32 elsewhere."""

from __future__ import annotations

from typing import Optional

import torch


def cpu_has_native_bf16() -> bool:
    """AVX512-BF16 or AMX: bf16 matmuls run natively (on other CPUs bf16 is emulated, and slower)."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line.split() for line in f if line.startswith("flags")), [])
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def autocast_dtype(precision: str, device: torch.device) -> Optional[torch.dtype]:
    """bf16 where asked, or on "auto" where the hardware runs it natively; None means fp32."""
    if precision != "auto":
        return torch.bfloat16 if precision == "bf16" else None
    native = torch.cuda.is_bf16_supported() if device.type == "cuda" else cpu_has_native_bf16()
    return torch.bfloat16 if native else None


def autocast(dtype: Optional[torch.dtype], device: torch.device):
    return torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None)
