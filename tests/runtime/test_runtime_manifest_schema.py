"""The manifest's one JSON Schema (runtime/manifest.schema.json) and the two small validators that check it, proved
against the real `jsonschema` package: hand-made and hypothesis-generated bad manifests are refused by the Python
reader, the JavaScript reader and jsonschema alike, and real manifests are accepted by all three."""

from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from bundle_helpers import TinyBundles
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vaekit.runtime import BundleError
from vaekit.runtime.manifest import Manifest, manifest_schema
from vaekit.runtime.schema import first_error, kind, same, unknown_keywords

REPO = Path(__file__).resolve().parents[2]
SCHEMA = manifest_schema()
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)
PROPERTIES, DEFS = SCHEMA["properties"], SCHEMA["$defs"]
FILE_NAME = DEFS["fileName"]["pattern"]
ISSUE_36_NAMES = ["https:evil.example/c.npy", "%2e%2e", "%2e%2e/x.npy", "../x.npy", "/etc/passwd", "a/../b.npy",
                  "a..b", "conformance/../../x", "C:\\x.npy", ".hidden", "x.npy\n", "a/b/c.npy", "", "x" * 129]
json_values = st.recursive(st.none() | st.booleans() | st.integers(-(2**70), 2**70)
                           | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=8),
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
                           max_leaves=12)


@pytest.fixture(scope="module")
def good(tiny_bundles: TinyBundles) -> list[dict[str, Any]]:
    """The manifests of real bundles: both likelihoods and kinds, a mixture prior (format version 2)."""
    return [json.loads((tiny_bundles[name].path / "manifest.json").read_text())
            for name in ("mlp-bernoulli", "conv-gaussian", "mlp-mixture")]


def python_refusal(manifest: Any) -> str | None:
    """The Python reader's BundleError message for `manifest`, or None when it accepts it."""
    try:
        Manifest.from_json(manifest)
    except BundleError as e:
        assert "\n" not in str(e)  # one line
        return str(e)
    return None


def js_refusals(manifests: list[Any], tmp_path: Path) -> list[str | None]:
    """The JavaScript reader's verdict on each manifest: its BundleError message, or None when it accepts it."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("Node.js is not installed")
    listed = tmp_path / "manifests.json"
    listed.write_text(json.dumps(manifests, allow_nan=False))
    done = subprocess.run([node, str(REPO / "tests" / "js" / "validate_manifests.mjs"), str(listed)], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_the_validators_implement_every_keyword_the_schema_uses() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    assert unknown_keywords(SCHEMA) == set()


@pytest.mark.parametrize("name", [*PROPERTIES, *(f"$defs/{d}" for d in DEFS)])
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=json_values)
def test_python_validator_agrees_with_jsonschema_on_any_value(name: str, value: Any) -> None:
    """Each part of the schema on arbitrary JSON: the stdlib validator accepts exactly what jsonschema accepts."""
    part = DEFS[name.removeprefix("$defs/")] if name.startswith("$defs/") else PROPERTIES[name]
    schema = {**part, "$defs": DEFS}
    assert (first_error(value, schema) is None) == jsonschema.Draft202012Validator(schema).is_valid(value)


def _wrong_type(allowed: set[str]) -> st.SearchStrategy[Any]:
    """JSON values whose type is none of `allowed` (an integer counts as a number)."""
    return json_values.filter(lambda v: kind(v) not in allowed and not (kind(v) == "integer" and "number" in allowed))


TYPED = {key: ({part["type"]} if isinstance(part.get("type"), str) else set(part.get("type", [])))
         for key, part in PROPERTIES.items() if "type" in part}


@st.composite
def bad_manifests(draw: st.DrawFn, base: dict[str, Any]) -> dict[str, Any]:
    """`base` with one thing broken that the schema forbids."""
    m = copy.deepcopy(base)
    how = draw(st.sampled_from(["drop", "type", "name", "bounds", "sha256", "enum", "quantiles", "prior"]))
    if how == "drop":
        del m[draw(st.sampled_from(SCHEMA["required"]))]
    elif how == "type":
        key = draw(st.sampled_from(sorted(TYPED)))
        m[key] = draw(_wrong_type(TYPED[key]))
    elif how == "name":
        name = draw(st.sampled_from(ISSUE_36_NAMES) | st.text(max_size=12).filter(lambda s: not re.search(FILE_NAME, s)))
        m["files"][name] = {"sha256": "0" * 64, "bytes": 1}
    elif how == "bounds":
        where, key, most = draw(st.sampled_from([(m, "latent_dim", 4096), (m["image_shape"], 1, 4096),
                                                 (m["image_shape"], 2, 4096), (m["score_quantiles"], "k", 1000),
                                                 (m["score_quantiles"], "n", None)]))
        where[key] = draw(st.integers(max_value=0) | (st.integers(min_value=most + 1) if most else st.nothing()))
    elif how == "sha256":
        m["files"]["encoder.onnx"]["sha256"] = draw(st.text(max_size=70).filter(lambda s: not re.fullmatch("[0-9a-f]{64}", s)))
    elif how == "enum":
        key = draw(st.sampled_from(["likelihood", "dtype", "format_version"]))
        m[key] = draw(json_values.filter(lambda v: not any(same(v, option) for option in PROPERTIES[key]["enum"])))
    elif how == "quantiles":
        q = m["score_quantiles"]["q"]
        level = draw(st.sampled_from(sorted(q)))
        if draw(st.booleans()):
            del q[level]
        else:
            q[draw(st.text(max_size=6).filter(lambda s: s not in q))] = 0.0
    else:
        m["format_version"], m["prior"] = 2, {"kind": "mixture", "weights": [draw(st.floats(max_value=0.0, allow_infinity=False))],
                                              "means": [[0.0] * m["latent_dim"]], "logvars": [[0.0] * m["latent_dim"]]}
    return m


def hand_made(base: dict[str, Any]) -> list[dict[str, Any]]:
    """The bad manifests issue 36 names, and a few more by hand."""
    def changed(change: Any) -> dict[str, Any]:
        m = copy.deepcopy(base)
        change(m)
        return m

    def conformance_file(name: str) -> Any:
        return lambda m: m["conformance"]["encoder"]["inputs"].update(image=name)

    return [
        *(changed(lambda m, n=name: m["files"].update({n: {"sha256": "0" * 64, "bytes": 1}})) for name in ISSUE_36_NAMES),
        *(changed(conformance_file(name)) for name in ("https:evil.example/c.npy", "%2e%2e")),
        changed(lambda m: m["score_quantiles"].update(k=10**9)),  # unbounded work per UI call
        changed(lambda m: m["score_quantiles"].update(seed=-1)),
        changed(lambda m: m.update(image_shape=[1, 100_000, 8])),
        changed(lambda m: m.update(image_shape=[2, 8, 8])),
        changed(lambda m: m.update(latent_dim=5000)),
        changed(lambda m: m.update(latent_dim=True)),
        changed(lambda m: m["files"].pop("decoder.onnx")),
        changed(lambda m: m["files"]["encoder.onnx"].pop("bytes")),
        changed(lambda m: m["tensors"]["encoder"].update(inputs=[1])),
        changed(lambda m: m.update(producer={"vaekit": 1})),
        changed(lambda m: m["provenance"].update(run=["/home"])),
        changed(lambda m: m["latent_pca"].update(n=0)),
        changed(lambda m: m["colour_reference"]["means"][0].__setitem__(0, 1.5)),  # not an average pixel value
        changed(lambda m: m["colour_reference"].update(bandwidth=[0.0] * len(m["colour_reference"]["bandwidth"]))),
        changed(lambda m: m.update(model={"hidden": [16]})),
    ]


def test_bad_manifests_are_refused_by_both_readers_and_jsonschema(good: list[dict[str, Any]], tmp_path: Path) -> None:
    """The same list goes to the Python reader, the JavaScript reader and jsonschema: each refuses every one."""
    generated: list[dict[str, Any]] = []

    @settings(max_examples=150, deadline=None, derandomize=True, database=None)
    @given(data=st.data())
    def python_and_jsonschema_refuse(data: st.DataObject) -> None:
        manifest = data.draw(bad_manifests(data.draw(st.sampled_from(good))))
        assert not VALIDATOR.is_valid(manifest), manifest
        assert python_refusal(manifest) is not None, manifest
        generated.append(manifest)

    python_and_jsonschema_refuse()
    bad = hand_made(good[0]) + generated
    for manifest in bad[: len(hand_made(good[0]))]:
        assert not VALIDATOR.is_valid(manifest) and python_refusal(manifest) is not None, manifest
    verdicts = js_refusals(bad, tmp_path)
    accepted = [m for m, verdict in zip(bad, verdicts) if verdict is None]
    assert not accepted, accepted[:3]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_good_manifests_are_accepted_by_all_three(good: list[dict[str, Any]], data: st.DataObject, tmp_path: Path) -> None:
    """Real manifests, and ones changed only where the format allows (keys readers ignore, at the top and inside the
    open parts, and other figures): the Python reader keeps the keys it does not name where it writes them back."""
    m = copy.deepcopy(data.draw(st.sampled_from(good)))
    m[data.draw(st.text(min_size=1, max_size=8).filter(lambda k: k not in PROPERTIES))] = data.draw(json_values)
    part = data.draw(st.sampled_from(["model", "provenance", "parity", "score_quantiles", "latent_pca", "colour_reference",
                                      "conformance"]))
    m[part][data.draw(st.text(min_size=1, max_size=8).filter(lambda k: k not in m[part] and k not in
                                                                 PROPERTIES[part].get("properties", {})))] = 1
    m["provenance"]["data"] = data.draw(st.text(max_size=20) | st.none())
    m["score_quantiles"]["k"] = data.draw(st.integers(1, 1000))
    assert VALIDATOR.is_valid(m) and python_refusal(m) is None
    assert {k: v for k, v in Manifest.from_json(m).to_json()[part].items() if v is not None} == \
        {k: v for k, v in m[part].items() if v is not None}
    if data.draw(st.booleans()):  # Node once in a while: it starts in a fraction of a second, not microseconds
        assert js_refusals([m], tmp_path) == [None]


def test_real_manifests_read_back_as_written(good: list[dict[str, Any]], tmp_path: Path) -> None:
    assert js_refusals(good, tmp_path) == [None] * len(good)
    for manifest in good:
        assert VALIDATOR.is_valid(manifest) and Manifest.from_json(manifest).to_json() == manifest
