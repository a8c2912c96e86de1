"""Property tests: malformed arrays thrown at every method get a clear ValueError, never a crash,
and well-formed inputs in any accepted layout and dtype give outputs of the right shape."""

from __future__ import annotations

import numpy as np
import pytest
from bundle_helpers import TinyBundles
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from vaekit.runtime import VAE

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
SHAPES = hnp.array_shapes(min_dims=0, max_dims=5, min_side=0, max_side=9)
BAD_DTYPES = st.sampled_from([np.int64, np.int8, np.uint16, np.bool_, np.complex64, object, "U2"])
BAD_VALUES = st.sampled_from([np.nan, np.inf, -np.inf, -0.5, 1.5, 255.0])


def _accepted_image_shape(shape: tuple[int, ...], c: int, h: int, w: int) -> bool:
    """Whether `shape` is a layout the runtime documents (written independently of the runtime)."""
    single = [(c, h, w), (h, w, c)] + ([(h, w)] if c == 1 else [])
    batch = [(c, h, w), (h, w, c)] + ([(h, w)] if c == 1 else [])
    return shape in single or (len(shape) >= 3 and shape[0] > 0 and shape[1:] in batch)


def _accepted_latent_shape(shape: tuple[int, ...], d: int) -> bool:
    return shape == (d,) or (len(shape) == 2 and shape[0] > 0 and shape[1] == d)


@st.composite
def malformed_images(draw: st.DrawFn, image_shape: tuple[int, int, int]) -> np.ndarray:
    """Arrays that must be refused: wrong shape, wrong dtype, non-finite or out-of-range values, empty."""
    c, h, w = image_shape
    kind = draw(st.sampled_from(["shape", "dtype", "value", "empty"]))
    good_shape = draw(st.sampled_from([(h, w, c), (c, h, w), (2, c, h, w), (3, h, w, c)]))
    if kind == "shape":
        shape = draw(SHAPES.filter(lambda s: not _accepted_image_shape(s, c, h, w)))
        return draw(hnp.arrays(np.float32, shape, elements=st.floats(0, 1, width=32)))
    if kind == "dtype":
        return np.zeros(good_shape, dtype=draw(BAD_DTYPES))
    if kind == "value":
        x = draw(hnp.arrays(np.float64, good_shape, elements=st.floats(0, 1)))
        x.flat[draw(st.integers(0, x.size - 1))] = draw(BAD_VALUES)
        return x
    return np.zeros((0, *good_shape[1:]) if len(good_shape) == 4 else (0, 0), np.float32)


@st.composite
def malformed_latents(draw: st.DrawFn, latent_dim: int) -> np.ndarray:
    kind = draw(st.sampled_from(["shape", "dtype", "value", "empty"]))
    if kind == "shape":
        shape = draw(SHAPES.filter(lambda s: not _accepted_latent_shape(s, latent_dim)))
        return np.zeros(shape, np.float32)
    if kind == "dtype":
        return np.zeros((2, latent_dim), dtype=draw(st.sampled_from([np.bool_, np.complex64, object, "U2"])))
    if kind == "value":
        z = np.zeros((2, latent_dim))
        z.flat[draw(st.integers(0, z.size - 1))] = draw(st.sampled_from([np.nan, np.inf, -np.inf]))
        return z
    return np.zeros((0, latent_dim), np.float32)


def _refused(call, *args, **kwargs) -> None:
    with pytest.raises(ValueError) as info:
        call(*args, **kwargs)
    assert len(str(info.value)) > 20  # says what was expected, not just "bad input"


@pytest.fixture
def bernoulli(tiny_bundles: TinyBundles) -> VAE:
    return tiny_bundles["mlp-bernoulli"].load(batch_size=4)


@pytest.fixture
def gaussian(tiny_bundles: TinyBundles) -> VAE:
    return tiny_bundles["conv-gaussian"].load(batch_size=4)


def _image_methods(vae: VAE, bad: np.ndarray) -> None:
    good = np.zeros(vae.image_shape, np.float32)
    for call, args in [(vae.encode, (bad,)), (vae.reconstruct, (bad,)), (vae.score, (bad,)),
                       (vae.interpolate, (bad, good)), (vae.interpolate, (good, bad))]:
        if call == vae.interpolate and bad.ndim == 1 and bad.size and bad.dtype.kind in "uif" \
                and bad.shape[0] == vae.latent_dim and np.isfinite(bad).all():
            continue  # a 1-D array of the latent size is a valid latent end
        _refused(call, *args)


@SETTINGS
@given(data=st.data())
def test_malformed_images_are_refused(bernoulli: VAE, gaussian: VAE, data: st.DataObject) -> None:
    for vae in (bernoulli, gaussian):
        _image_methods(vae, data.draw(malformed_images(vae.image_shape)))


@SETTINGS
@given(data=st.data())
def test_malformed_latents_are_refused(bernoulli: VAE, gaussian: VAE, data: st.DataObject) -> None:
    for vae in (bernoulli, gaussian):
        bad = data.draw(malformed_latents(vae.latent_dim))
        _refused(vae.decode, bad)
        _refused(vae.decode_params, bad)
        _refused(vae.traverse, bad, 0, [0.0, 1.0])
        one_d_numbers = bad.ndim == 1 and bad.dtype.kind in "uif"
        if not (one_d_numbers and bad.size and np.isfinite(bad).all()):  # else: valid traversal values
            _refused(vae.traverse, np.zeros(vae.latent_dim), 0, bad)
        if one_d_numbers:  # a 1-D array is an interpolation end's latent; other shapes may be valid images
            _refused(vae.interpolate, bad, np.zeros(vae.latent_dim))


BAD_COUNTS = st.one_of(st.integers(max_value=0), st.floats(), st.just(True), st.text(max_size=2), st.none())
BAD_REALS = st.one_of(st.sampled_from([np.nan, np.inf, -1.0, -1e-9]), st.text(max_size=2), st.none())


@SETTINGS
@given(n=BAD_COUNTS, temperature=BAD_REALS, seed=st.one_of(st.integers(max_value=-1), st.floats(), st.text()),
       dim=st.one_of(st.integers(max_value=-1), st.integers(min_value=3), st.floats(), st.text(), st.none()))
def test_bad_scalars_are_refused(bernoulli: VAE, n: object, temperature: object, seed: object, dim: object) -> None:
    _refused(bernoulli.sample, n)
    _refused(bernoulli.sample, 2, temperature=temperature)
    _refused(bernoulli.sample, 2, seed=seed)
    x = np.zeros(bernoulli.image_shape, np.float32)
    _refused(bernoulli.score, x, k=n)
    _refused(bernoulli.score, x, seed=seed)
    _refused(bernoulli.interpolate, x, x, steps=n)
    _refused(bernoulli.traverse, np.zeros(bernoulli.latent_dim), dim, [0.0])  # latent_dim is 3
    _refused(bernoulli.interpolate, x, x, method="cubic")


@SETTINGS
@given(data=st.data())
def test_any_accepted_layout_gives_the_right_shapes(bernoulli: VAE, gaussian: VAE, data: st.DataObject) -> None:
    for vae in (bernoulli, gaussian):
        c, h, w = vae.image_shape
        n = data.draw(st.integers(1, 11))
        layouts = [(n, c, h, w), (n, h, w, c), (c, h, w), (h, w, c)] + ([(h, w), (n, h, w)] if c == 1 else [])
        shape = data.draw(st.sampled_from(layouts))
        if data.draw(st.booleans()):
            x = data.draw(hnp.arrays(np.uint8, shape))
        else:
            x = data.draw(hnp.arrays(st.sampled_from([np.float16, np.float32, np.float64]), shape,
                                     elements=st.floats(0, 1, width=16)))
        count = 1 if shape in [(c, h, w), (h, w, c), (h, w)] else n
        mean, logvar = vae.encode(x)
        assert mean.shape == logvar.shape == (count, vae.latent_dim)
        assert vae.reconstruct(x).shape == (count, *vae.image_shape)
        assert vae.score(x, k=2).shape == (count,)
