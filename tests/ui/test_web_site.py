"""vaekit-web: the static site it writes, its errors, and the page in headless Chromium against the Python
runtime (same seed, same pixels), with nothing requested off its origin and a corrupted bundle refused."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from bundle_helpers import fail_the_swap
from ui_browser import chromium_missing
from web_site import SOFTWARE_WEBGPU, canvas_pixels, serve, site_page

from vaekit.runtime import VAE
from vaekit.ui import web_cli
from vaekit.ui.display import STRIP_PX, enlarge, tile
from vaekit.ui.site import ORT_FILES, SiteError, build_site

needs_browser = pytest.mark.skipif(chromium_missing() is not None, reason=str(chromium_missing()))
LEVELS = 2  # uint8 levels that wasm and the Python runtime's CPU kernels may differ by after rounding


@pytest.fixture(scope="module")
def site(ui_bundles: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The colour bundle's site (12 latent dimensions: the Explore tab shows 10 sliders)."""
    return build_site(ui_bundles["rgb"], tmp_path_factory.mktemp("web") / "site")


def test_the_site_holds_page_runtime_bundle_and_onnxruntime(site: Path, ui_bundles: dict[str, Path]) -> None:
    manifest = json.loads((site / "bundle" / "manifest.json").read_text())
    assert manifest == json.loads((ui_bundles["rgb"] / "manifest.json").read_text())
    assert all((site / "bundle" / name).read_bytes() == (ui_bundles["rgb"] / name).read_bytes() for name in manifest["files"])
    assert all((site / "ort" / name).is_file() for name in ORT_FILES)
    assert (site / "vaekit" / "vaekit.mjs").is_file() and '"onnxruntime-web": "./ort/' in (site / "index.html").read_text()
    schema = Path(__file__).resolve().parents[2] / "runtime" / "manifest.schema.json"
    assert (site / "manifest.schema.json").read_bytes() == schema.read_bytes()  # where vaekit/schema.mjs fetches it


def test_the_command_refuses_with_one_line(ui_bundles: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert web_cli.main([str(ui_bundles["gray"]), "--out", str(tmp_path / "s"), "--ort-dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("vaekit-web: error: onnxruntime-web's files") and "npm ci" in err and "\n" not in err
    assert web_cli.main([str(ui_bundles["gray"]), "--out", str(tmp_path / "s")]) == 0
    assert web_cli.main([str(ui_bundles["gray"]), "--out", str(tmp_path / "s")]) == 1
    assert "already exists; pass --force" in capsys.readouterr().err
    assert web_cli.main([str(ui_bundles["gray"]), "--out", str(tmp_path / "s"), "--force"]) == 0
    assert web_cli.main([str(tmp_path / "nothing"), "--out", str(tmp_path / "t")]) == 1
    assert "does not exist" in capsys.readouterr().err and not (tmp_path / "t").exists()


def test_the_page_sets_a_content_security_policy(site: Path) -> None:
    """Only the site's own files run or load (no inline script but the import map, by its hash), WebAssembly
    may compile, and nothing is sent to another origin."""
    page = (site / "index.html").read_text()
    policy = re.search(r'<meta http-equiv="Content-Security-Policy" content="([^"]+)">', page)
    assert policy, "no Content-Security-Policy"
    rules = dict((part.split()[0], part.split()[1:]) for part in policy.group(1).split("; "))
    assert rules["default-src"] == ["'self'"] and rules["object-src"] == ["'none'"]
    assert rules["base-uri"] == ["'none'"] and rules["connect-src"] == ["'self'"]
    importmap = re.search(r'<script type="importmap">(.*?)</script>', page, re.S).group(1)
    digest = base64.b64encode(hashlib.sha256(importmap.encode()).digest()).decode()
    assert sorted(rules["script-src"]) == sorted(["'self'", "'wasm-unsafe-eval'", f"'sha256-{digest}'"])
    assert page.count("<script") == 2 and '<script type="module" src="app.mjs"></script>' in page


def test_force_replaces_only_a_site_vaekit_wrote(ui_bundles: dict[str, Path], tmp_path: Path) -> None:
    """A folder shaped like a site (index.html, bundle/manifest.json) is the user's unless vaekit-web marked it."""
    mine = tmp_path / "mine"
    (mine / "bundle").mkdir(parents=True)
    (mine / "index.html").write_text("my page")
    (mine / "bundle" / "manifest.json").write_text("{}")
    with pytest.raises(SiteError, match="not a web folder that vaekit wrote.*even with --force"):
        build_site(ui_bundles["gray"], mine, force=True)
    assert (mine / "index.html").read_text() == "my page"
    site = build_site(ui_bundles["gray"], tmp_path / "site")
    (site / "index.html").unlink()  # marked, but not whole: not replaced either
    with pytest.raises(SiteError, match="no index.html"):
        build_site(ui_bundles["gray"], site, force=True)


def test_a_failed_swap_keeps_the_old_site(ui_bundles: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """--force over a site: when the new site cannot be moved in, the old one comes back whole and the error says so."""
    out = build_site(ui_bundles["gray"], tmp_path / "site")
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    fail_the_swap(monkeypatch)
    with pytest.raises(SiteError, match="No space left on device.*nothing was changed there"):
        build_site(ui_bundles["rgb"], out, force=True)
    monkeypatch.undo()
    assert {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert [p.name for p in tmp_path.iterdir()] == ["site"]


@pytest.mark.browser
@needs_browser
def test_the_page_samples_like_python_from_its_own_origin_only(site: Path, ui_bundles: dict[str, Path]) -> None:
    vae = VAE.load(ui_bundles["rgb"], device="cpu")
    requested: list[str] = []
    with serve(site) as url, site_page(url, requested) as page:
        assert page.get_attribute("body", "data-state") == "ready", page.text_content("#error")
        assert "onnxruntime-web (wasm)" in page.text_content("#about")  # Chromium here has no GPU: said, not hidden
        assert page.text_content("#check").startswith("Conformance: checked on wasm")
        _sample_matches_python(page, vae)
        assert page.locator("#sliders input").count() == 10
        # The first interpolation (seeds 0 and 1, 10 steps, slerp) and the Explore centre, drawn like vaekit-ui.
        ends = [vae.prior_latents(1, seed=s)[0] for s in (0, 1)]
        strip = np.asarray(tile(vae.interpolate(*ends, steps=10, method="slerp"), nrow=10, target=STRIP_PX).convert("RGB"))
        centre = np.asarray(enlarge(vae.decode(np.asarray(vae.manifest.latent_pca.mean))[0]).convert("RGB"))
        for selector, want in (("#interpolate-strip", strip), ("#explore-image", centre)):
            got = canvas_pixels(page, selector)
            assert got.shape == want.shape and np.abs(got.astype(int) - want).max() <= LEVELS, selector
    assert requested and all(r.startswith(url) for r in requested), [r for r in requested if not r.startswith(url)]


def _sample_matches_python(page, vae: VAE) -> None:
    """Sample 16 images with seed 3 at temperature 0.8 on the page; its canvas must show the Python runtime's grid."""
    expected = np.asarray(tile(vae.sample(16, seed=3, temperature=0.8), nrow=4).convert("RGB"))
    page.fill("#sample-n", "16")
    page.fill("#sample-seed", "3")
    page.locator("#sample-temperature").fill("0.8")
    page.click("#sample-button")
    page.wait_for_function(f"() => document.querySelector('#sample-grid').width === {expected.shape[1]}")
    got = canvas_pixels(page, "#sample-grid")
    assert got.shape == expected.shape and np.abs(got.astype(int) - expected).max() <= LEVELS


@pytest.mark.browser
@needs_browser
def test_the_page_runs_on_webgpu_where_there_is_an_adapter(site: Path, ui_bundles: dict[str, Path]) -> None:
    """Chromium's software WebGPU adapter: the page picks WebGPU, says so, passes the conformance vectors there."""
    with serve(site) as url, site_page(url, args=SOFTWARE_WEBGPU) as page:
        if "(webgpu)" not in page.text_content("#about"):
            pytest.skip(f"this Chromium offers no WebGPU adapter here: {page.text_content('#about')}")
        assert page.get_attribute("body", "data-state") == "ready", page.text_content("#error")
        assert page.text_content("#check").startswith("Conformance: checked on webgpu")
        _sample_matches_python(page, VAE.load(ui_bundles["rgb"], device="cpu"))


@pytest.mark.browser
@needs_browser
def test_a_corrupted_bundle_is_refused_on_the_page(site: Path, tmp_path: Path) -> None:
    broken = Path(shutil.copytree(site, tmp_path / "broken"))
    decoder = broken / "bundle" / "decoder.onnx"
    data = bytearray(decoder.read_bytes())
    data[-1] ^= 0xFF
    decoder.write_bytes(bytes(data))
    with serve(broken) as url, site_page(url) as page:
        assert page.get_attribute("body", "data-state") == "error"
        message = page.text_content("#error")
        assert "bundle/decoder.onnx: sha256 does not match the manifest" in message and page.is_visible("#error")
        assert page.is_disabled("#sample-button")
