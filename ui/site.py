"""The static site of `vaekit-web`: the page (ui/web), vaekit's JavaScript runtime (runtime/js), one bundle and
onnxruntime-web's files, in one folder that any static host serves, same-origin and offline.

onnxruntime-web is never part of vaekit: its files come from the npm package that `npm ci` installs from
package-lock.json (in a vaekit checkout), or from a folder the user names (`--ort-dir`).
"""

from __future__ import annotations

import json
import os
from importlib.resources import files
from pathlib import Path

from vaekit.runtime.bundle import MANIFEST_FILE, read_manifest
from vaekit.runtime.errors import TargetError, VaekitError
from vaekit.runtime.files import check_ours, staged_folder
from vaekit.runtime.manifest import SCHEMA_FILE

ORT_WEB_VERSION = "1.30.0"  # the version package-lock.json pins, the one the page is tested with
# The ES module the page imports and the WebAssembly builds it loads (plain for wasm, asyncify for WebGPU).
ORT_FILES = ("ort.webgpu.min.mjs", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm",
             "ort-wasm-simd-threaded.asyncify.mjs", "ort-wasm-simd-threaded.asyncify.wasm")
ORT_PACKAGE = Path("node_modules") / "onnxruntime-web" / "dist"
PAGE_FILES = ("index.html", "app.mjs", "style.css")
# Folders of a built site (index.html's import map and app.mjs name them).
SITE_RUNTIME, SITE_ORT, SITE_BUNDLE = "vaekit", "ort", "bundle"


class SiteError(VaekitError):
    """The site cannot be built: onnxruntime-web's files are missing, or the output folder is unusable."""


def ort_fix() -> str:
    """How to get onnxruntime-web's files, in one sentence."""
    return (f"run `npm ci` in a vaekit checkout, or `npm install onnxruntime-web@{ORT_WEB_VERSION}` in this folder, "
            "or pass --ort-dir with the dist/ folder of that npm package (see the README, 'Use it from JavaScript')")


def find_ort_dir(ort_dir: str | os.PathLike[str] | None = None) -> Path:
    """The folder holding ORT_FILES: `ort_dir` when given, else node_modules/onnxruntime-web/dist in the current
    folder, one of its parents, or the vaekit checkout this package runs from; SiteError naming the fix otherwise."""
    if ort_dir is not None:
        candidates = [Path(ort_dir)]
    else:
        here = Path.cwd().absolute()
        checkout = Path(__file__).resolve().parents[1]  # an editable install's source tree
        candidates = [base / ORT_PACKAGE for base in (here, *here.parents, checkout)]
    for folder in candidates:
        if all((folder / name).is_file() for name in ORT_FILES):
            return folder
    where = str(candidates[0]) if ort_dir is not None else f"{ORT_PACKAGE} (here, above, or in the vaekit checkout)"
    raise SiteError(f"onnxruntime-web's files ({', '.join(ORT_FILES[:2])}, ...) are not in {where}: {ort_fix()}")


def check_out(out: Path, force: bool) -> None:
    """Raise SiteError unless `out` is free, or (with `force`) a site that vaekit-web wrote."""
    if not (out.exists() or out.is_symlink()):
        return
    if not force:
        raise SiteError(f"{str(out)!r} already exists; pass --force to replace it, or choose another --out")
    try:
        check_ours(out, "web", ("index.html", f"{SITE_BUNDLE}/{MANIFEST_FILE}"))
    except TargetError as e:
        raise SiteError(str(e)) from None


def runtime_files() -> tuple[str, ...]:
    """Every module of the JavaScript runtime (runtime/js): the page imports vaekit.mjs, which imports the rest."""
    return tuple(sorted(p.name for p in (files("vaekit.runtime") / "js").iterdir() if p.name.endswith(".mjs")))


def _copy(names: tuple[str, ...], source: object, target: Path) -> None:
    """Copy the files `names` from `source` (a folder Path or a package's resources) into `target`."""
    for name in names:
        (target / name).parent.mkdir(parents=True, exist_ok=True)
        (target / name).write_bytes((source / name).read_bytes())  # type: ignore[operator]


def build_site(bundle: str | os.PathLike[str], out: str | os.PathLike[str], *, ort_dir: str | os.PathLike[str] | None = None,
               force: bool = False) -> Path:
    """Write the static site of `bundle` (checked: manifest and checksums) to the folder `out`, staged beside it and
    renamed into place, so that `out` is either the whole site or untouched. Returns `out`."""
    manifest = read_manifest(bundle)
    ort = find_ort_dir(ort_dir)
    out = Path(out).absolute()
    check_out(out, force)
    try:
        with staged_folder(out, lambda existing: check_out(existing, force), kind="web") as stage:
            _copy(PAGE_FILES, files("vaekit.ui") / "web", stage)
            _copy(runtime_files(), files("vaekit.runtime") / "js", stage / SITE_RUNTIME)
            _copy((SCHEMA_FILE,), files("vaekit.runtime"), stage)  # where schema.mjs finds it: beside its folder
            _copy(ORT_FILES, ort, stage / SITE_ORT)
            _copy((MANIFEST_FILE, *manifest.files), Path(bundle), stage / SITE_BUNDLE)
            (stage / SITE_ORT / "VERSION.json").write_text(json.dumps({"onnxruntime-web": _version(ort)}) + "\n")
    except OSError as e:
        raise SiteError(f"writing the site {str(out)!r} failed ({e}); nothing was changed there; choose another --out") from e
    return out


def _version(ort: Path) -> str | None:
    """onnxruntime-web's version from its package.json beside dist/, when there is one."""
    try:
        return json.loads((ort.parent / "package.json").read_text())["version"]
    except (OSError, ValueError, KeyError):
        return None
