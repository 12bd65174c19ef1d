"""The CLI shell: help, version, and the one-line error contract."""

import subprocess
import sys

from mdpl import cli
from mdpl.errors import DataError


def test_no_command_prints_help_and_exits_0(capsys):
    """Issue 12 item 10 / issue 13: bare `mdpl` answers with its help, not an error status (was 1)."""
    assert cli.main([]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: mdpl") and "calibrate" in out


def test_every_registered_command_has_help():
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    assert {"data", "lsm", "calibrate", "benchmark", "batch", "bench"} <= set(sub.choices)
    for name, p in sub.choices.items():
        assert p.format_help().startswith("usage: mdpl " + name)


def test_user_error_is_one_line_and_exit_2(monkeypatch, capsys):
    parser = cli.build_parser()

    def boom(args):
        raise DataError("/x/y_Met.nc: no 'time' axis")

    monkeypatch.setattr(cli, "build_parser", lambda: parser)
    sub = next(a for a in parser._actions if a.dest == "command")
    sub.add_parser("boom").set_defaults(func=boom)
    assert cli.main(["boom"]) == 2
    err = capsys.readouterr().err
    assert err == "mdpl: error: /x/y_Met.nc: no 'time' axis\n"


def test_help_is_fast_and_does_not_import_torch():
    code = "import sys; from mdpl import cli; cli.build_parser(); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
