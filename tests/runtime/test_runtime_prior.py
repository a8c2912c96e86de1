"""vaekit's portable generator (runtime/prior.py): known answers that every runtime must reproduce, and its
properties. tests/js/runtime.test.mjs checks the same answers in JavaScript."""

from __future__ import annotations

import math

import numpy as np
import pytest

from vaekit.runtime.prior import MAX_SEED, prior_latents, seed_or_fresh, standard_normal, words

# Seed -> its first two words (splitmix64's first outputs for that state) and first four normals;
# docs/bundle-format.md ("Seeded noise") lists the same numbers.
KNOWN = {
    0: ([0xE220A8397B1DCDAF, 0x6E789E6AA1B965F4], [-0.45275774598121643, 2.6506059169769287, -0.9886041283607483,
                                                  0.2524627149105072]),
    3: ([0x1D0B14E4DB018FED, 0xB3466F8A7B81A989], [-0.6410515904426575, 0.8874809145927429, -1.146878957748413,
                                                  1.5312470197677612]),
    MAX_SEED: ([0xE4D971771B652C20, 0xE99FF867DBF682C9], [0.4038981795310974, -1.5578114986419678,
                                                         0.37761974334716797, -0.003086482873186469]),
}


def _reference(seed: int, i: int) -> float:
    """Normal number i of `seed` with Python integers and math (no numpy), straight from the spec."""
    def mix(z: int) -> int:
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9 % 2**64
        z = (z ^ (z >> 27)) * 0x94D049BB133111EB % 2**64
        return z ^ (z >> 31)

    u1, u2 = (((mix((seed + (j + 1) * 0x9E3779B97F4A7C15) % 2**64) >> 11) + 0.5) * 2.0**-53 for j in (2 * i, 2 * i + 1))
    return math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * u2)


@pytest.mark.parametrize("seed", sorted(KNOWN))
def test_known_answers(seed: int) -> None:
    first_words, normals = KNOWN[seed]
    assert words(seed, 0, 2).tolist() == first_words
    np.testing.assert_allclose(standard_normal(seed, 0, 4), normals, rtol=1e-6)
    np.testing.assert_allclose(standard_normal(seed, 0, 64), [_reference(seed, i) for i in range(64)], rtol=1e-6, atol=1e-7)


def test_counter_based_slices_and_shapes() -> None:
    whole = standard_normal(7, 0, 1000)
    # to float32 rounding, not bit for bit: numpy's SIMD log/cos (AVX-512 vs AVX2) may round a last bit differently
    np.testing.assert_allclose(standard_normal(7, 613, 387), whole[613:], rtol=1e-6, atol=1e-7)
    assert whole.dtype == np.float32 and abs(whole.mean()) < 0.1 and abs(whole.std() - 1.0) < 0.1
    z = prior_latents(5, 4, seed=7, temperature=0.5)
    np.testing.assert_allclose(z, whole[:20].reshape(5, 4) * np.float32(0.5), rtol=1e-6, atol=1e-7)


def test_seeds_are_checked() -> None:
    assert seed_or_fresh(MAX_SEED) == MAX_SEED and 0 <= seed_or_fresh(None) <= MAX_SEED
    for bad in (-1, MAX_SEED + 1, 1.5, True):
        with pytest.raises(ValueError, match="seed"):
            seed_or_fresh(bad)
