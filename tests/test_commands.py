"""Every vaekit command runs its work through runtime/extras.py `run_command`: a user error is one line and exit
status 1, Ctrl-C is exit status 130 with one line (vaekit-train's trainer says itself how to resume), and a bug
keeps its traceback. Each command's work is replaced by a stand-in that fails the way the test needs."""

from __future__ import annotations

import importlib
from collections.abc import Callable

import pytest

from vaekit.runtime.errors import InputError

# command -> (its module, argv, the module and name of the work it does, what it says on Ctrl-C)
COMMANDS = {
    "vaekit-train": ("vaekit.train.train_cli", ["--out", "runs/x"], "vaekit.train.train_cli", "train", None),
    "vaekit-export": ("vaekit.export.export_cli", ["runs/x", "--out", "bundles/x"], "vaekit.export.api", "export_run",
                      "interrupted; nothing written"),
    "vaekit-sample": ("vaekit.runtime.sample_cli", ["bundles/x", "--out", "x.png"], "vaekit.runtime.sample_cli", "run",
                      "interrupted; nothing written"),
    "vaekit-check": ("vaekit.runtime.check_cli", ["bundles/x"], "vaekit.runtime.check_cli", "report", "interrupted"),
    "vaekit-score": ("vaekit.runtime.score_cli", ["bundles/x", "images"], "vaekit.runtime.score_cli", "run",
                     "interrupted; nothing written"),
    "vaekit-ui": ("vaekit.ui.ui_cli", ["bundles/x"], "vaekit.ui.app", "serve", "interrupted"),
    "vaekit-web": ("vaekit.ui.web_cli", ["bundles/x", "--out", "site"], "vaekit.ui.site", "build_site",
                   "interrupted; nothing written"),
}


def _raising(error: BaseException) -> Callable[..., None]:
    def work(*args: object, **kwargs: object) -> None:
        raise error

    return work


def _run(command: str, error: BaseException, monkeypatch: pytest.MonkeyPatch) -> int:
    """`command` with its work raising `error`; its exit status."""
    cli, argv, module, name, _ = COMMANDS[command]
    monkeypatch.setattr(importlib.import_module(module), name, _raising(error))
    return importlib.import_module(cli).main(argv)


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_a_user_error_is_one_line(command: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(command, InputError("the thing; the fix"), monkeypatch) == 1
    assert capsys.readouterr().err == f"{command}: error: the thing; the fix\n"


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_ctrl_c_is_exit_status_130(command: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(command, KeyboardInterrupt(), monkeypatch) == 130
    says = COMMANDS[command][-1]
    assert capsys.readouterr().err == ("" if says is None else f"\n{command}: {says}\n")


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_a_bug_keeps_its_traceback(command: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ZeroDivisionError):
        _run(command, ZeroDivisionError("a bug"), monkeypatch)
