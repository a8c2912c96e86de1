"""The running app: every endpoint through gradio_client, refusals of files it must not serve, safe
defaults, and the `vaekit-ui` command."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import numpy as np
import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from PIL import Image
from ui_helpers import free_port, pixels, write_image

from vaekit.runtime import VAE
from vaekit.ui import API_NAMES, build_app, launch_settings
from vaekit.ui.app import CONCURRENCY, QUEUE_SIZE
from vaekit.ui.handlers import Handlers
from vaekit.ui.ui_cli import is_local, main


@pytest.fixture(scope="module")
def local(served: tuple[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Handlers:
    """Handlers on the served bundle, in this process: what the server must answer."""
    return Handlers(VAE.load(served[1], device="cpu"), tmp_path_factory.mktemp("ui-local"))


def _same_picture(served_file: str, expected: Image.Image) -> bool:
    return np.array_equal(pixels(served_file), np.asarray(expected))


def test_every_endpoint_is_public_with_its_stable_name(client: Client) -> None:
    assert set(client.view_api(print_info=False, return_format="dict")["named_endpoints"]) == {
        f"/{name}" for name in API_NAMES}


def test_sample_endpoints(client: Client, local: Handlers) -> None:
    grid = client.predict(9, 4, 0.7, api_name="/sample")
    assert Path(grid).suffix == ".png" and _same_picture(grid, local.sample(9, 4, 0.7))
    seed, grid = client.predict(9, 1.0, api_name="/new_seed")
    assert isinstance(seed, int) and _same_picture(grid, local.sample(9, seed, 1.0))


def test_interpolate_endpoints(client: Client, local: Handlers, tmp_path: Path) -> None:
    strip, gif = client.predict(2, 9, 6, "lerp", api_name="/interpolate_seeds")
    assert _same_picture(strip, local.interpolate_seeds(2, 9, 6, "lerp")[0])
    with Image.open(gif) as animation:
        assert animation.format == "GIF" and animation.n_frames == 10
    a, b = write_image(tmp_path / "a.png", seed=3), write_image(tmp_path / "b.png", mode="RGB", seed=4)
    strip, gif = client.predict(handle_file(a), handle_file(b), 3, "slerp", api_name="/interpolate_images")
    assert _same_picture(strip, local.interpolate_images(str(a), str(b), 3, "slerp")[0])


def test_explore_endpoints(client: Client, local: Handlers) -> None:
    k = local.sliders
    values = [0.5 * (i + 1) for i in range(k)]
    image = client.predict("main directions", *values, api_name="/explore")
    assert _same_picture(image, local.explore("main directions", values))
    *sliders, image = client.predict("latent dimensions", api_name="/explore_center")
    assert [s["value"] for s in sliders] == [0.0] * k
    assert [s["label"] for s in sliders] == local.axes["latent dimensions"].labels
    *sliders, image = client.predict("main directions", 12, api_name="/explore_random")
    values, expected = local.explore_start("main directions", 12)
    assert [s["value"] for s in sliders] == values and _same_picture(image, expected)
    with pytest.raises(AppError, match="seed must be a whole number"):  # an empty seed box is not the centre
        client.predict("main directions", None, api_name="/explore_random")


def test_reconstruct_endpoint(client: Client, local: Handlers, tmp_path: Path) -> None:
    path = write_image(tmp_path / "digit.png", size=(28, 28))
    seen, rebuilt, score, reading = client.predict(handle_file(path), api_name="/reconstruct")
    want = local.reconstruct(str(path))
    assert _same_picture(seen, want[0]) and _same_picture(rebuilt, want[1])
    assert score == pytest.approx(want[2], abs=0.005) and reading == want[3]  # the page shows 2 decimals


def test_model_endpoint(client: Client, local: Handlers) -> None:
    info = client.predict(api_name="/model")
    assert info["summary"] == local.model_info()["summary"]
    assert info["manifest"]["files"] == local.vae.manifest.to_json()["files"]


@pytest.mark.parametrize("content, message", [
    (b"just some text", "not an image vaekit can read"),
    (b"GIF89a truncated", "not an image vaekit can read"),
])
def test_bad_uploads_get_a_clear_message(client: Client, tmp_path: Path, content: bytes, message: str) -> None:
    (tmp_path / "upload.png").write_bytes(content)
    with pytest.raises(AppError, match=message):
        client.predict(handle_file(tmp_path / "upload.png"), api_name="/reconstruct")


def test_huge_images_get_a_clear_message(client: Client, tmp_path: Path) -> None:
    Image.new("L", (8000, 6000)).save(tmp_path / "huge.png")
    with pytest.raises(AppError, match="megapixels"):
        client.predict(handle_file(tmp_path / "huge.png"), api_name="/reconstruct")


def test_uploads_over_the_size_cap_are_refused(served: tuple[str, Path], tmp_path: Path) -> None:
    big = tmp_path / "big.png"
    big.write_bytes(os.urandom(launch_settings(served[1])["max_file_size"] + 1))
    with big.open("rb") as f:
        response = httpx.post(served[0] + "gradio_api/upload", files={"files": ("big.png", f, "image/png")})
    assert response.status_code == 413 and "maximum allowed size" in response.text


def test_bad_values_get_a_clear_message(client: Client) -> None:
    with pytest.raises(AppError, match="greater than maximum value 100"):  # gradio's own check
        client.predict(1000, 0, 1.0, api_name="/sample")
    with pytest.raises(AppError, match="image: no image yet; upload one first"):
        client.predict(None, api_name="/reconstruct")


def _file_url(base: str, path: str) -> str:
    return f"{base}gradio_api/file={path}"


def test_serves_its_own_files_only(served: tuple[str, Path], client: Client) -> None:
    base, bundle = served
    temp = Path(os.environ["GRADIO_TEMP_DIR"])
    assert bundle.is_relative_to(temp), "the bundle lies among the app's own files: only the block refuses it"
    own = httpx.get(base + "config").json()["components"]
    served_image = next(c["props"]["value"]["path"] for c in own if c["props"].get("elem_id") == "sample-grid")
    assert httpx.get(_file_url(base, served_image)).status_code == 200  # the control: its own files are served
    control = temp / "control" / "manifest.json"
    control.parent.mkdir(exist_ok=True)
    control.write_text((bundle / "manifest.json").read_text())
    assert httpx.get(_file_url(base, str(control))).status_code == 200  # a copy outside the bundle is served
    refused = ["/etc/passwd", "%2Fetc%2Fpasswd", f"{temp}/../../etc/passwd", f"{temp}/..%2F..%2Fetc%2Fpasswd",
               "../../../../etc/passwd", "/proc/self/environ", str(bundle / "manifest.json"),
               str(bundle / "encoder.onnx"), f"{bundle}/../{bundle.name}/decoder.onnx", str(bundle), str(temp),
               "manifest.json"]
    for path in refused:
        response = httpx.get(_file_url(base, path))
        assert response.status_code in (403, 404), f"{path}: {response.status_code}"
        assert set(response.json()) == {"detail"}, f"{path}: not a refusal"
    for path in ("/file=/etc/passwd", "/static/../../../etc/passwd", "/assets/../../etc/passwd"):
        assert httpx.get(base.rstrip("/") + path).status_code == 404, path


@pytest.mark.parametrize("where", ["elsewhere", "bundle"])
def test_api_calls_cannot_name_server_files(served: tuple[str, Path], tmp_path: Path, where: str) -> None:
    """A FileData naming a real image on the server (not an upload) is refused before any handler runs:
    the handler would have reconstructed and scored it."""
    base, bundle = served
    path = write_image((bundle if where == "bundle" else tmp_path) / "secret.png", size=(8, 8))
    try:
        start = httpx.post(base + "gradio_api/call/reconstruct",
                           json={"data": [{"path": str(path), "meta": {"_type": "gradio.FileData"}}]})
        result = httpx.get(base + f"gradio_api/call/reconstruct/{start.json()['event_id']}", timeout=30).text
    finally:
        path.unlink()
    assert "event: error" in result and "nats" not in result and "not an image" not in result, result


def _call(base: str, api: str, data: list) -> str:
    """The event stream of one raw API call (what any HTTP client can send, no gradio_client)."""
    start = httpx.post(base + f"gradio_api/call/{api}", json={"data": data})
    return httpx.get(base + f"gradio_api/call/{api}/{start.json()['event_id']}", timeout=30).text


@pytest.mark.parametrize("where", ["elsewhere", "bundle", "fifo", "upload folder"])
@pytest.mark.parametrize("api", ["reconstruct", "interpolate_images"])
def test_bare_paths_from_clients_are_never_opened(served: tuple[str, Path], tmp_path: Path, where: str,
                                                  api: str) -> None:
    """A file argument without gradio's `meta` (a bare {"path": ...} or a plain string) skips gradio's own
    check: the app refuses it all the same, with one message that says nothing about the file, and a FIFO
    never hangs a worker."""
    base, bundle = served
    temp = Path(os.environ["GRADIO_TEMP_DIR"])
    folder = {"elsewhere": tmp_path, "bundle": bundle, "fifo": tmp_path, "upload folder": temp / "notes"}[where]
    folder.mkdir(exist_ok=True)
    path = folder / "secret.png"
    if where == "fifo":
        os.mkfifo(path)
    else:
        write_image(path, size=(8, 8))
    try:
        for payload in ({"path": str(path)}, {"path": f"{temp}/../{path.relative_to('/')}"}, {"path": str(path),
                                                                                                "url": None}):
            extra = [{"path": str(path)}, 3, "lerp"] if api == "interpolate_images" else []
            result = _call(base, api, [payload, *extra])
            assert "event: error" in result and "not uploaded to this app" in result, result
            assert "nats" not in result and "not an image" not in result and "pixels" not in result, result
    finally:
        path.unlink()
    if where == "upload folder":  # the control: a real upload, named the same bare way, is read
        png = write_image(tmp_path / "upload.png", size=(8, 8)).read_bytes()
        upload = httpx.post(base + "gradio_api/upload", files={"files": ("x.png", png)})
        assert "event: complete" in _call(base, "reconstruct", [{"path": upload.json()[0]}])


def test_request_bodies_are_capped(served: tuple[str, Path]) -> None:
    """One request cannot store more than one upload's worth: a thousand files in one body are refused, by
    the length the client announces or, streamed without one, as the bytes arrive."""
    base = served[0]
    many = [("files", (f"{i}.png", b"\0" * 20_000, "image/png")) for i in range(1000)]
    response = httpx.post(base + "gradio_api/upload", files=many)
    assert response.status_code == 413 and "upload one image" in response.text

    def parts():  # the same thousand files, streamed with no length announced
        for i in range(1000):
            yield (f'--b\r\nContent-Disposition: form-data; name="files"; filename="{i}.png"\r\n'
                   'Content-Type: image/png\r\n\r\n').encode() + b"\0" * 20_000 + b"\r\n"
        yield b"--b--\r\n"

    response = httpx.post(base + "gradio_api/upload", content=parts(),
                          headers={"content-type": "multipart/form-data; boundary=b"})
    assert response.status_code == 413


def test_safe_defaults(served: tuple[str, Path]) -> None:
    base, bundle = served
    assert base.startswith("http://127.0.0.1:")
    config = httpx.get(base + "config").json()
    types = {c["type"] for c in config["components"]}
    assert not types & {"fileexplorer", "file", "dataset"}, "no file explorer, no file lists"
    assert not any("flag" in (d.get("api_name") or "") for d in config["dependencies"])
    settings = launch_settings(bundle)
    assert settings["allowed_paths"] == [] and str(bundle.resolve()) in settings["blocked_paths"]
    assert settings["max_file_size"] <= 10 * 1024 * 1024 and settings["show_error"] is False


def test_queue_is_bounded_and_concurrency_limited(served: tuple[str, Path]) -> None:
    app = build_app(served[1], device="cpu")
    assert app._queue.max_size == QUEUE_SIZE and app._queue.default_concurrency_limit == CONCURRENCY
    fns = {fn.api_name: fn for fn in app.fns.values()}
    assert set(fns) == set(API_NAMES)
    assert all(fn.concurrency_limit == "default" for fn in fns.values())  # i.e. CONCURRENCY each
    assert fns["explore"].trigger_mode == "always_last"  # a dragged slider queues one decode, not hundreds


def test_cli_reports_a_missing_bundle(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(tmp_path / "nope")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("vaekit-ui: error: bundle folder") and "vaekit-export" in err


def test_cli_refuses_a_bad_port(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bundle", "--port", "70000"]) == 1
    assert "--port must be from 1 to 65535" in capsys.readouterr().err


def test_cli_knows_which_hosts_are_local() -> None:
    assert all(map(is_local, ["127.0.0.1", "127.0.1.1", "::1", "localhost"]))
    assert not any(map(is_local, ["0.0.0.0", "::", "192.168.1.20", "example.org"]))


def test_cli_help_names_the_safe_default(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "default 127.0.0.1" in capsys.readouterr().out


# `vaekit-ui` in a child process with Ctrl+C restored: a shell that runs this suite in the background makes
# its children ignore SIGINT, and Python then never turns Ctrl+C into KeyboardInterrupt.
CLI = ("import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
       "from vaekit.ui.ui_cli import main; sys.exit(main(sys.argv[1:]))")


def _start_cli(bundle: Path, port: int) -> tuple[subprocess.Popen[str], list[str]]:
    """`vaekit-ui BUNDLE --port PORT` as a real process, and its output up to the line saying it serves."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRADIO_")}  # its own private temp folder
    proc = subprocess.Popen([sys.executable, "-c", CLI, str(bundle), "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    lines: list[str] = []
    while not any("serving" in line for line in lines) and proc.poll() is None:
        lines.append(proc.stdout.readline())
    return proc, lines


def _stop(proc: subprocess.Popen[str], signum: int) -> str:
    """Send `signum`, wait for the exit (draining the output, so a full pipe cannot block it) and return
    the rest of the output; a process that does not stop is killed, and the test fails."""
    proc.send_signal(signum)
    try:
        rest, _ = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    return rest


@pytest.mark.timeout(180)
def test_cli_stops_cleanly_on_sigterm(served: tuple[str, Path]) -> None:
    """`kill` (SIGTERM, as docker and systemd send) closes the server like Ctrl+C, with exit status 0."""
    proc, lines = _start_cli(served[1], free_port())
    rest = _stop(proc, signal.SIGTERM)
    assert proc.returncode == 0 and "vaekit-ui: stopped" in rest, lines + [rest]


@pytest.mark.timeout(180)
def test_cli_serves_on_localhost_by_default(served: tuple[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    """`vaekit-ui BUNDLE` as a real process: 127.0.0.1 only, one line saying where, Ctrl+C stops it; and
    a port already taken is a one-line error."""
    bundle, port = served[1], free_port()
    proc, lines = _start_cli(bundle, port)
    try:
        assert f"vaekit-ui: serving {bundle} on http://127.0.0.1:{port}/ (Ctrl+C to stop)\n" in lines, lines
        assert httpx.get(f"http://127.0.0.1:{port}/").status_code == 200
        try:
            addresses = socket.gethostbyname_ex(socket.gethostname())[2]
        except OSError:  # a host name that does not resolve: no other address to try
            addresses = []
        other = next((ip for ip in addresses if not ip.startswith("127.")), None)
        if other is not None:
            with pytest.raises((httpx.ConnectError, httpx.ConnectTimeout)):
                httpx.get(f"http://{other}:{port}/", timeout=3)
        taken = served[0].rsplit(":", 1)[1].strip("/")
        assert main([str(bundle), "--port", taken]) == 1
        assert f"cannot serve on 127.0.0.1:{taken}" in capsys.readouterr().err
    finally:
        rest = _stop(proc, signal.SIGINT)
    assert proc.returncode == 0 and "vaekit-ui: stopped" in rest, rest[-3000:]
