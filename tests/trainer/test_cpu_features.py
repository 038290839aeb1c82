"""bf16 autocast only on a CPU with bf16 instructions (trainer.cpu_features): on an AVX2-only CPU an edit
step in bf16 took ~100 s against 9 s in fp32."""

from __future__ import annotations

import contextlib
from pathlib import Path
from types import SimpleNamespace

import torch

from trainer.cpu_features import cpu_flags, cpu_has_native_bf16
from trainer.edit_stage import EditStage

EPYC_AVX2 = (
    "processor\t: 0\nvendor_id\t: AuthenticAMD\nflags\t\t: fpu sse sse2 avx avx2 fma\n\nprocessor\t: 1\n"
)
XEON_BF16 = "processor\t: 0\nflags\t\t: fpu avx2 avx512f avx512_bf16 amx_tile\n"


def test_bf16_is_native_only_with_its_instructions(tmp_path: Path) -> None:
    for name, text, native in (("epyc", EPYC_AVX2, False), ("xeon", XEON_BF16, True)):
        (tmp_path / name).write_text(text)
        assert cpu_has_native_bf16(tmp_path / name) is native
    assert "avx2" in cpu_flags(tmp_path / "epyc") and "avx512_bf16" not in cpu_flags(tmp_path / "epyc")
    assert cpu_flags(tmp_path / "missing") == frozenset() and not cpu_has_native_bf16(tmp_path / "missing")


def test_an_edit_run_autocasts_to_bf16_on_the_cpu_only_where_it_is_native() -> None:
    stage = object.__new__(EditStage)
    stage.device = torch.device("cpu")
    for amp, native, autocast in ((True, True, True), (True, False, False), (False, True, False)):
        stage.config, stage.cpu_bf16 = SimpleNamespace(amp=amp), native  # type: ignore[assignment]
        context = stage.autocast()
        assert isinstance(context, torch.autocast) is autocast
        assert autocast or isinstance(context, contextlib.nullcontext)
