"""train/ and export/ use torch's public API only: private names (`torch._*`, `torch.ops.aten`) change between releases."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PRIVATE = re.compile(r"\btorch\.(_(?!_)\w+|ops\.aten)\b")  # dunders such as torch.__version__ are public


def test_train_and_export_call_no_private_torch_api() -> None:
    found = [f"{path.relative_to(ROOT)}:{n}: {line.strip()}" for stage in ("train", "export")
             for path in sorted((ROOT / stage).rglob("*.py"))
             for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if PRIVATE.search(line)]
    assert not found, "private torch API:\n" + "\n".join(found)


def test_the_check_catches_a_private_call() -> None:
    assert PRIVATE.search("torch._fused_adamw_(params)") and PRIVATE.search("torch.ops.aten.silu_backward(g, x)")
    assert not PRIVATE.search("torch.optim.AdamW(params, fused=True)") and not PRIVATE.search("torch.__version__")
