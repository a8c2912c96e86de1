"""train/ uses torch's public API only: private names (`torch._*`, `torch.ops.aten`) change between releases."""

from __future__ import annotations

import re
from pathlib import Path

TRAIN = Path(__file__).resolve().parents[2] / "train"
PRIVATE = re.compile(r"\btorch\.(_\w+|ops\.aten)\b")


def test_train_calls_no_private_torch_api() -> None:
    found = [f"{path.name}:{n}: {line.strip()}" for path in sorted(TRAIN.rglob("*.py"))
             for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if PRIVATE.search(line)]
    assert not found, "private torch API in train/:\n" + "\n".join(found)


def test_the_check_catches_a_private_call() -> None:
    assert PRIVATE.search("torch._fused_adamw_(params)") and PRIVATE.search("torch.ops.aten.silu_backward(g, x)")
    assert not PRIVATE.search("torch.optim.AdamW(params, fused=True)")
