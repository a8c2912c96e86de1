"""The runtime's promise: import and a full decode work where torch cannot be imported at all."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
from bundle_helpers import TinyBundle
from import_blocker import TORCH, blocking
from runtime_helpers import torch_params

# A fresh interpreter in which any import of torch raises, before vaekit.runtime is imported.
BLOCKED = blocking(TORCH) + """
import numpy as np
from vaekit.runtime import VAE
vae = VAE.load(sys.argv[1], device="cpu")
z = np.linspace(-1, 1, 2 * vae.latent_dim, dtype=np.float32).reshape(2, vae.latent_dim)
np.save(sys.argv[2], vae.decode(z))
vae.score(vae.sample(3, seed=0), k=2)
assert not [m for m in sys.modules if m.split(".")[0] == "torch"]
print("ok")
"""


def test_decode_where_torch_is_blocked(exported: TinyBundle, tmp_path) -> None:
    out = tmp_path / "decoded.npy"
    result = subprocess.run([sys.executable, "-c", BLOCKED, str(exported.path), str(out)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == "ok"
    latent_dim = exported.model.config.latent_dim
    z = np.linspace(-1, 1, 2 * latent_dim, dtype=np.float32).reshape(2, latent_dim)
    np.testing.assert_allclose(np.load(out), torch_params(exported.model, z)["image"], atol=1e-4)
