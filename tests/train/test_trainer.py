"""The trainer: it learns, it is reproducible, it resumes exactly, and it never loses a run."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from train_helpers import assert_same_weights, planned, tiny_config, trained, weights

from vaekit.train import ConfigError, RunError, TrainConfig, TrainingError, load_run, train
from vaekit.train import loop as loop_module
from vaekit.train.budget import EVAL_MIN_S
from vaekit.train.chores import Interrupts
from vaekit.train.loop import dynamic_binarize
from vaekit.train.plan import FIT_HEADROOM, auto_precision, cpu_has_native_bf16, lr_for, select_device
from vaekit.train.rng import BINARIZE_BLOCK_BYTES, BinarizeDraws, below_255
from vaekit.train.train_cli import main as train_main


def _records(run: Path, kind: str) -> list[dict]:
    return [r for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines()) if r["kind"] == kind]


def test_run_folder_and_loss_goes_down(tmp_path: Path) -> None:
    # 30 epochs (under a second): a fresh model starts from the data's mean image, so the first epoch's loss is already
    # that of the mean, and it takes more than a few epochs of 13 steps to learn 2 nats past it
    run = trained(tiny_config(tmp_path / "run", epochs=30, nll_images=180))  # the estimate on the ELBO's images
    names = {p.name for p in run.iterdir()}
    assert {"config.json", "checkpoint.pt", "metrics.jsonl", "summary.json", "loss_curve.png"} <= names
    assert any(n.startswith("samples_epoch") for n in names) and any(n.startswith("recon_epoch") for n in names)
    evals, first_epoch = _records(run, "eval"), _records(run, "train")[0]
    assert evals[-1]["epoch"] == 30 and evals[-1]["images"] == 180  # the closing pass, on every held-out image
    assert all(0 < e["seconds"] < 10 for e in evals)  # what each pass cost (benchmarks/train_speed.py takes it off)
    assert -evals[-1]["elbo"] < first_epoch["loss"] - 2  # held-out ELBO ends well above the first epoch's loss
    summary = json.loads((run / "summary.json").read_text())
    # the IWAE bound is tighter than the ELBO: NLL estimate <= -ELBO (up to sampling noise)
    assert summary["test_nll"] <= -summary["metrics"]["test_elbo"] + 0.5
    config = json.loads((run / "config.json").read_text())
    assert config["model"]["kind"] == "mlp" and config["train"]["binarize"] == "dynamic"


def test_checkpoint_loads_with_weights_only(tmp_path: Path) -> None:
    run = trained(tiny_config(tmp_path / "run", epochs=1))
    state = torch.load(run / "checkpoint.pt", weights_only=True)
    assert state["format"] == "vaekit-checkpoint" and state["epoch"] == 1
    loaded = load_run(run)
    assert loaded.model_config.latent_dim == 4 and not loaded.model.training
    assert loaded.heldout(5).shape == (5, 1, 8, 8)


def test_seeded_runs_are_identical(tmp_path: Path) -> None:
    assert_same_weights(trained(tiny_config(tmp_path / "a")), trained(tiny_config(tmp_path / "b")))


@pytest.mark.parametrize("model, likelihood, iwae_k", [("conv", "gaussian", 1), ("mlp", "bernoulli", 3)])
def test_other_models_and_objectives_train(tmp_path: Path, model: str, likelihood: str, iwae_k: int) -> None:
    cfg = tiny_config(tmp_path / "run", model=model, likelihood=likelihood, iwae_k=iwae_k, hidden=[16],
                      conv_channels=[4, 8], free_bits=0.1, kl_warmup_epochs=1.0, epochs=2)
    summary = json.loads((trained(cfg) / "summary.json").read_text())
    assert all(map(lambda v: v == v, summary.values()))  # no NaN anywhere
    assert load_run(tmp_path / "run").model_config.likelihood == likelihood


@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
def test_resume_gives_the_weights_of_an_uninterrupted_run(tmp_path: Path, precision: str) -> None:
    """Exact in either precision (bfloat16 is chosen explicitly, so it runs on every CPU, emulated where it must)."""
    full = trained(tiny_config(tmp_path / "full", epochs=4, precision=precision))
    part = tiny_config(tmp_path / "part", epochs=4, max_time=1e-9, precision=precision)  # stops after its first step
    train(part)
    saved = torch.load(tmp_path / "part" / "checkpoint.pt", weights_only=True)
    assert saved["step"] == 1 and saved["plan"]["train"]["precision"] == precision
    train(TrainConfig(), resume=tmp_path / "part")
    assert_same_weights(full, tmp_path / "part")
    assert json.loads((full / "config.json").read_text())["train"]["precision"] == precision
    assert all(math.isfinite(r["loss"]) for r in _records(full, "train"))
    assert all(w.dtype == torch.float32 for w in weights(full).values())  # bfloat16 computes; weights stay float32


@pytest.mark.parametrize("device, native, precision", [("cpu", True, "bfloat16"), ("cpu", False, "float32"),
                                                       ("cuda", True, "float32")])
def test_auto_precision_is_bfloat16_only_on_cpus_with_native_bf16(device: str, native: bool, precision: str) -> None:
    chosen, why = auto_precision(device, native)
    assert chosen == precision and why.startswith(f"{precision}: ")


def test_native_bf16_probe_is_false_without_torchs_private_probes(monkeypatch: pytest.MonkeyPatch) -> None:
    assert isinstance(cpu_has_native_bf16(), bool)
    for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"):
        monkeypatch.delattr(torch.cpu, name, raising=False)
    assert cpu_has_native_bf16() is False


def test_native_bf16_probe_is_false_when_torchs_kernels_are_capped_at_avx2() -> None:
    code = "from vaekit.train.plan import cpu_has_native_bf16; print(cpu_has_native_bf16())"
    env = {**os.environ, "ATEN_CPU_CAPABILITY": "avx2"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"  # auto then trains in float32, as on an AVX2-only CPU


def test_a_checkpoint_without_a_plan_is_not_resumed_but_still_loads(tmp_path: Path) -> None:
    """A checkpoint from before plans were saved names what to do instead; export (load_run) still reads it."""
    run = trained(tiny_config(tmp_path / "run", epochs=1))
    saved = torch.load(run / "checkpoint.pt", weights_only=True)
    del saved["plan"]
    torch.save(saved, run / "checkpoint.pt")
    with pytest.raises(RunError, match="holds no plan .* export it as it is, or train again"):
        train(TrainConfig(), resume=run)
    assert load_run(run).model_config.latent_dim == 4


def test_chores_are_paced_to_a_share_of_the_clock(tmp_path: Path) -> None:
    """Held-out passes, grids and checkpoints cost a few percent whatever an epoch costs: on tiny data they run
    every few epochs, not every epoch, and the closing ones always run."""
    summary = train(tiny_config(tmp_path / "run", epochs=150, batch_size=128))
    evals, run = _records(tmp_path / "run", "eval"), tmp_path / "run"
    assert evals[-1]["step"] == summary.steps == 150 * 13
    assert 2 <= len(evals) <= 2 + summary.wall_time_s / EVAL_MIN_S  # at most one a second, not one an epoch
    assert torch.load(run / "checkpoint.pt", weights_only=True)["step"] == summary.steps


def test_max_time_plans_the_epochs_without_epochs(tmp_path: Path) -> None:
    """--max-time counts from the command's start, and without --epochs the run plans its epochs from it."""
    budget = 100.0
    started = time.perf_counter() - (budget - 20.0)  # start-up "took" 80 s of the budget: 20 s are left
    summary = train(tiny_config(tmp_path / "run", epochs=None, max_time=budget), started=started)
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["why"]["epochs"].startswith("fitted to --max-time 100") and config["train"]["epochs"] >= 1
    # the rate and the KL warm-up follow the fitted length (fitted epochs = allowed epochs / FIT_HEADROOM)
    fitted = config["train"]["epochs"] / FIT_HEADROOM
    assert config["train"]["kl_warmup_epochs"] == pytest.approx(fitted / 2, abs=0.5)
    assert config["train"]["lr"] == 4e-3 and "1/sqrt(steps)" in config["why"]["lr"]  # a few hundred steps: the short-run rate
    assert 1 < summary.steps < config["train"]["epochs"] * 7  # stopped by the budget, not by the planned epochs


def test_an_interrupt_waits_for_the_end_of_the_step() -> None:
    """Ctrl-C or kill during a step is raised when the step ends, so the checkpoint on the way out is exact."""
    interrupts, finished = Interrupts(), []
    with interrupts.installed(), pytest.raises(KeyboardInterrupt):
        with interrupts.deferred():
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.01)
            finished.append("the step")
    assert finished == ["the step"]
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL  # put back


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGTERM], ids=["kill-9", "kill"])
def test_resume_after_a_kill(tmp_path: Path, tiny_npz: Path, how: signal.Signals) -> None:
    """A real kill mid-run: the last checkpoint survives (kill -9), or is written at the step it stopped (a plain
    kill, as Ctrl-C does), and resuming finishes the run exactly."""
    args = ["--data", str(tiny_npz), "--model", "mlp", "--hidden", "16", "--latent-dim", "2", "--epochs", "400",
            "--batch-size", "8", "--nll-k", "4", "--images-every", "1000", "--no-progress", "--precision", "float32"]
    run, train_cli = tmp_path / "killed", [sys.executable, "-m", "vaekit.train"]
    proc = subprocess.Popen([*train_cli, *args, "--out", str(run)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not (run / "checkpoint.pt").exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    time.sleep(0.3)
    os.kill(proc.pid, how)
    proc.wait()
    assert proc.returncode == (-signal.SIGKILL if how == signal.SIGKILL else 130), "the run finished before the kill"
    assert torch.load(run / "checkpoint.pt", weights_only=True)["epoch"] < 400
    # the resumed and the straight run in fresh processes too, as a user runs them: all three segments then start
    # from the same process state (run inside this long-lived test process, they once differed at float rounding)
    subprocess.run([*train_cli, "--resume", str(run)], check=True, stdout=subprocess.DEVNULL)
    subprocess.run([*train_cli, *args, "--out", str(tmp_path / "straight")], check=True, stdout=subprocess.DEVNULL)
    assert_same_weights(run, tmp_path / "straight")


@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
def test_an_epochs_loss_is_the_mean_of_its_steps(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 precision: str) -> None:
    taken: list[torch.Tensor] = []
    step = loop_module.train_step

    def recorded(*args, **kwargs):
        loss, k = step(*args, **kwargs)
        taken.append(loss)
        return loss, k

    monkeypatch.setattr(loop_module, "train_step", recorded)
    run = trained(tiny_config(tmp_path / "run", epochs=3, batch_size=32, precision=precision))
    records = _records(run, "train")
    spe = records[0]["step"]  # 45 steps an epoch
    assert len(taken) == 3 * spe
    for epoch, record in enumerate(records):
        computed = torch.stack(taken[epoch * spe : (epoch + 1) * spe])
        assert abs(record["loss"] - float(computed.mean())) < 1e-5 * abs(record["loss"])


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path: Path) -> None:
    """The resumed run's first step has a finite loss and jumps the weights; the next step's loss is not finite."""
    run = trained(tiny_config(tmp_path / "run", epochs=3, grad_clip=None, max_time=1e-9))  # one good step
    good = torch.load(run / "checkpoint.pt", weights_only=True)
    good["plan"]["train"]["lr"] = 1e30  # diverges at once
    torch.save(good, run / "checkpoint.pt")
    with pytest.raises(TrainingError, match=r"the loss became (nan|inf) at step 3 .* last good checkpoint .* was kept"):
        train(TrainConfig(), resume=run)
    kept = torch.load(run / "checkpoint.pt", weights_only=True)
    assert kept["step"] == 1 and kept["plan"]["train"]["lr"] == 1e30
    for key, value in good["model"].items():
        torch.testing.assert_close(kept["model"][key], value, rtol=0, atol=0)
    with pytest.raises(TrainingError, match="no checkpoint had been written yet"):
        trained(tiny_config(tmp_path / "fresh", lr=1e30, grad_clip=None))


@pytest.mark.parametrize("option, message", [({"seed": -1}, "seed must be a non-negative integer"),
                                             ({"max_time": 0}, "max_time must be positive"),
                                             ({"iwae_k": 0}, "iwae_k must be at least 1"),
                                             ({"prior_components": -1}, "prior_components must be 0"),
                                             ({"prior_components": 4, "free_bits": 0.5}, "--free-bits needs the standard normal"),
                                             ({"precision": "float16"}, r"precision must be one of \('float32', 'bfloat16'\)")])
def test_a_bad_option_is_named(tmp_path: Path, option: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        train(tiny_config(tmp_path / "run", **option))


def test_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    trained(tiny_config(tmp_path / "run", epochs=1))
    with pytest.raises(RunError, match="--force"):
        trained(tiny_config(tmp_path / "run", epochs=1))


def test_cuda_without_gpu_is_an_error(tmp_path: Path) -> None:
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(TrainingError, match="no CUDA GPU"):
        trained(tiny_config(tmp_path / "run", device="cuda"))


def test_load_run_errors(tmp_path: Path) -> None:
    with pytest.raises(RunError, match="does not exist"):
        load_run(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(RunError, match="no checkpoint"):
        load_run(tmp_path / "empty")
    (tmp_path / "empty" / "checkpoint.pt").write_bytes(b"garbage")
    with pytest.raises(RunError, match="unreadable checkpoint"):
        load_run(tmp_path / "empty")
    run = trained(tiny_config(tmp_path / "run", epochs=1))
    (run / "summary.json").write_text('{"epochs": 1,\n')  # cut short
    with pytest.raises(RunError, match=r"summary\.json: not a valid run summary .*delete it"):
        load_run(run)
    (run / "summary.json").unlink()
    state = torch.load(run / "checkpoint.pt", weights_only=True)
    state["model_config"]["kind"] = "transformer"
    torch.save(state, run / "checkpoint.pt")
    with pytest.raises(RunError, match="unknown model kind 'transformer'"):
        load_run(run)


def test_cli_help_and_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        train_main(["--help"])
    assert exit_info.value.code == 0
    assert "--resume" in capsys.readouterr().out
    code = train_main(["--hidden", "16", "--latent-dim", "2", "--epochs", "1", "--nll-k", "4", "--nll-images", "16",
                       "--no-progress", "--out", str(tmp_path / "cli")])
    assert code == 0 and "test NLL" in capsys.readouterr().out
    config = json.loads((tmp_path / "cli" / "config.json").read_text())  # --precision auto, resolved for this machine
    resolved = auto_precision(select_device("auto").type, cpu_has_native_bf16())
    assert (config["train"]["precision"], config["why"]["precision"]) == resolved
    assert train_main(["--data", str(tmp_path / "missing"), "--out", str(tmp_path / "x")]) == 1
    assert "does not exist" in capsys.readouterr().err


def test_recipe_schedule_follows_the_runs_length() -> None:
    """Without --lr and --kl-warmup-epochs, the mlp recipe's rate falls and its warm-up grows with the run's
    length, and the run ends at the full KL weight; what the user gives is kept as it is."""
    short = planned(TrainConfig(epochs=2), (1, 8, 8), 1000)  # 8 steps an epoch at batch 128
    assert (short.lr, short.kl_warmup_epochs) == (4e-3, 1.0) and "1/sqrt(steps)" in short.why["lr"]
    long = planned(TrainConfig(epochs=70), (1, 28, 28), 50_000)  # 3.5 M images: the long-run batch 256
    assert long.model.activation == "silu" and "ELU" in long.why["activation"]  # the mlp recipe's activation, and why
    assert long.lr == pytest.approx(4e-3 * (5_000 / (70 * 196)) ** 0.5) and long.kl_warmup_epochs == 35.0
    assert lr_for("mlp", 10_000) < lr_for("mlp", 5_000) == lr_for("mlp", 10) == 4e-3
    asked = planned(TrainConfig(epochs=2, kl_warmup_epochs=5.0, lr=1e-3), (1, 8, 8), 1000)
    assert (asked.lr, asked.kl_warmup_epochs) == (1e-3, 5.0) and "lr" not in asked.why
    conv = planned(TrainConfig(epochs=40, model="conv"), (3, 32, 32), 1000)  # measured on the mlp family only
    assert (conv.lr, conv.kl_warmup_epochs) == (1e-3, 10.0)


def test_long_runs_of_the_28x28_recipe_take_the_larger_network_batch_and_mixture(tmp_path: Path, monkeypatch) -> None:
    """A run that sees at least LONG_RUN_IMAGES images gets 768-384, batch 256 and 64 mixture components where the
    recipe chose them, from --epochs or from what --max-time fits (the run is then timed again); what the user gives is
    kept."""
    from vaekit.train import plan
    from vaekit.train.plan import LONG_RUN_BATCH, LONG_RUN_COMPONENTS, LONG_RUN_HIDDEN, MIXTURE_COMPONENTS, MLP_HIDDEN

    short = planned(TrainConfig(epochs=30), (1, 28, 28), 60_000)  # 1.8 M images
    assert (tuple(short.model.hidden), short.batch_size, short.model.prior_components) == (MLP_HIDDEN, 128,
                                                                                          MIXTURE_COMPONENTS)
    long = planned(TrainConfig(epochs=40), (1, 28, 28), 60_000)  # 2.4 M images
    assert (tuple(long.model.hidden), long.batch_size) == (LONG_RUN_HIDDEN, LONG_RUN_BATCH)
    assert "2 M images" in long.why["hidden"]
    assert long.model.prior_components == LONG_RUN_COMPONENTS and "2 M images" in long.why["prior_components"]
    for given in (0, 8):  # the user's prior, standard normal or mixture, is kept
        assert planned(TrainConfig(epochs=40, prior_components=given), (1, 28, 28), 60_000).model.prior_components == given
    assert planned(TrainConfig(epochs=40, free_bits=0.5), (1, 28, 28), 60_000).model.prior_components == 0
    assert long.lr == pytest.approx(lr_for("mlp", 40 * 235))  # the rate follows the long-run batch's steps
    kept = planned(TrainConfig(epochs=40, batch_size=128), (1, 28, 28), 60_000)
    assert (tuple(kept.model.hidden), kept.batch_size) == (MLP_HIDDEN, 128)
    digits = planned(TrainConfig(epochs=10_000), (1, 8, 8), 1_000)  # the 8x8 recipe has no long-run network
    assert digits.model.hidden == [256, 128] and digits.batch_size == 128
    # under --max-time the planner decides after timing the recipe's network; a low threshold makes any run long
    monkeypatch.setattr(plan, "LONG_RUN_IMAGES", 1)
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "faces.npz", x=rng.integers(0, 256, (300, 28, 28), dtype=np.uint8))
    run = trained(TrainConfig(data=str(tmp_path / "faces.npz"), out=str(tmp_path / "run"), max_time=6, nll_k=4,
                              nll_images=16, progress=False, precision="float32"))
    saved = json.loads((run / "config.json").read_text())
    assert saved["model"]["hidden"] == list(LONG_RUN_HIDDEN) and saved["train"]["batch_size"] == LONG_RUN_BATCH
    assert saved["model"]["prior_components"] == LONG_RUN_COMPONENTS
    assert "2 M images" in saved["why"]["batch_size"] and saved["why"]["epochs"].startswith("fitted to --max-time 6")
    loaded = load_run(run).model  # the checkpoint holds that network and prior
    assert loaded.encoder.head[0].out_features == LONG_RUN_HIDDEN[0] and len(loaded.prior.logits) == LONG_RUN_COMPONENTS


def test_below_255_is_uniform_over_0_to_254() -> None:
    draws = below_255(np.random.Generator(np.random.PCG64(0)), (2_000_000,))
    counts = np.bincount(draws, minlength=256)
    assert counts[255] == 0  # every 255 was drawn again
    expected = len(draws) / 255
    assert np.abs(counts[:255] - expected).max() < 6 * math.sqrt(expected)  # each value within 6 sd of 1/255


def test_dynamic_binarize_keeps_each_pixel_with_probability_v_over_255() -> None:
    values = torch.tensor([0, 1, 64, 128, 254, 255], dtype=torch.uint8)
    x = values.repeat(40_000, 1)
    first = dynamic_binarize(x, below_255(np.random.Generator(np.random.PCG64([3, 7])), tuple(x.shape)))
    assert first.dtype == torch.float32 and set(first.unique().tolist()) <= {0.0, 1.0}
    assert first[:, 0].sum() == 0 and first[:, -1].sum() == len(x)  # exactly 0 and 1 at the ends
    assert torch.allclose(first.mean(0), values / 255, atol=0.01)


def test_binarize_draws_follow_from_the_step_alone() -> None:
    """What exact resume relies on: a step's draws are the same whichever steps were drawn before, in the same
    process or a fresh one; steps differ; a block holds about BINARIZE_BLOCK_BYTES, and a big batch one step."""
    shape = (16, 28, 28)
    straight = BinarizeDraws(seed=3)
    seen = [straight(step, shape, 16).copy() for step in range(40)]
    assert 1 < len(straight.draws) <= BINARIZE_BLOCK_BYTES // math.prod(shape)  # drawn for a block of steps at once
    for step in (0, 5, 17, 39):
        assert np.array_equal(BinarizeDraws(seed=3)(step, shape, 16), seen[step])
    assert not np.array_equal(seen[0], seen[1]) and not np.array_equal(seen[15], seen[16])
    assert np.array_equal(BinarizeDraws(seed=3)(7, shape, 10), seen[7][:10])  # a short last batch: its first images
    assert not np.array_equal(BinarizeDraws(seed=4)(7, shape, 16), seen[7])
    big = BinarizeDraws(seed=3)
    assert big(1, (128, 3, 64, 64), 128).shape == (128, 3, 64, 64) and big.draws.nbytes <= 2 * BINARIZE_BLOCK_BYTES


def test_named_streams_never_share_a_seed() -> None:
    """Each (seed, stream, index) has its own seed, the same in every process (offsets of one integer could collide)."""
    from vaekit.train.rng import Stream, seed_of

    seeds = [seed_of(seed, stream, i) for seed in range(3) for stream in Stream for i in range(100)]
    assert len(set(seeds)) == len(seeds) and all(0 <= s < 2**63 for s in seeds)
    assert seed_of(0, Stream.NOISE, 5) == seed_of(0, Stream.NOISE, 5) != seed_of(0, Stream.NOISE)
    code = "from vaekit.train.rng import Stream, seed_of; print(seed_of(7, Stream.DATA_ORDER, 3))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert int(out) == seed_of(7, Stream.DATA_ORDER, 3)
