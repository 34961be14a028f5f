"""The `ssogw` command line: every command of the design's contract is there, and every command
group answers `--help` through the console script's entry point."""

from __future__ import annotations

import argparse
import io

import pytest

from app.cli.main import COMMAND_GROUPS, build_parser, main
from app.cli.seed import SeedProgress

# The design's CLI contract: "`ssogw` covers every operator task: `serve`, `db up|down|status`,
# `migrate`, `seed`, `import`, `partner add|list|disable|rotate`, `client add|list|disable`,
# `audit lookups|verify`, `settlement import|report|export`, `refunds list`", and
# `partner add … --json`, `client add … --json` print one JSON document.
CONTRACT: dict[str, tuple[str, ...]] = {
    "serve": (),
    "db": ("up", "down", "status", "backup", "backups", "prune", "restore"),
    "migrate": (),
    "seed": (),
    "import": ("persons",),
    "partner": ("add", "list", "disable", "rotate"),
    "client": ("add", "list", "disable"),
    "audit": ("lookups", "verify"),
    "settlement": ("import", "report", "export"),
    "refunds": ("list",),
}
JSON_COMMANDS = (("partner", "add"), ("client", "add"))


def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """The parser's subcommands by name (none for a leaf command)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def choices(parser: argparse.ArgumentParser, dest: str) -> tuple[str, ...]:
    """The choices of the positional ``dest`` (``db up|down|status``)."""
    found = [a for a in parser._actions if a.dest == dest and not a.option_strings]
    return tuple(found[0].choices or ()) if found else ()


def help_of(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """What `ssogw ARGV --help` prints, through ``main``; it exits 0."""
    with pytest.raises(SystemExit) as exit_:
        main([*argv, "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: {' '.join(['ssogw', *argv])}")
    return out


def test_the_parser_has_every_command_of_the_contract() -> None:
    commands = subcommands(build_parser())
    assert set(CONTRACT) <= set(commands)
    for name, actions in CONTRACT.items():
        nested = subcommands(commands[name])
        offered = set(nested) or set(choices(commands[name], "action"))
        assert set(actions) <= offered, f"ssogw {name}: {sorted(offered)}"
    for name, action in JSON_COMMANDS:
        leaf = subcommands(commands[name])[action]
        assert "--json" in leaf._option_string_actions, f"ssogw {name} {action} --json"


def test_every_command_has_a_handler() -> None:
    def leaves(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
        nested = subcommands(parser)
        return [leaf for child in nested.values() for leaf in leaves(child)] if nested else [parser]

    for command in subcommands(build_parser()).values():
        for leaf in leaves(command):
            assert callable(leaf.get_default("handler")) or callable(
                command.get_default("handler")
            ), f"{leaf.prog} has no handler"


def test_ssogw_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    out = help_of([], capsys)
    commands = subcommands(build_parser())
    assert len(commands) >= len(COMMAND_GROUPS)
    for name in commands:
        assert f"    {name} " in out or f"    {name}\n" in out, name


@pytest.mark.parametrize("command", sorted(subcommands(build_parser())))
def test_each_command_answers_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    out = help_of([command], capsys)
    parser = subcommands(build_parser())[command]
    nested = subcommands(parser)
    for name in nested:
        assert name in out
    for name in choices(parser, "action"):  # `db up|down|status`
        assert name in out
    for name in nested:
        help_of([command, name], capsys)


@pytest.mark.parametrize(
    "argv",
    [
        ["partner", "list", "--json"],
        ["client", "list", "--json"],
        ["audit", "lookups", "--national-id", "6260181590830"],
    ],
)
def test_a_command_that_cannot_reach_the_primary_exits_1_and_names_the_store(
    argv: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Nothing listens on port 1: the refusal comes at once, with no database in the test.
    monkeypatch.setenv("SSOGW_PRIMARY_DSN", "postgresql://nobody@127.0.0.1:1/none")
    monkeypatch.setenv("SSOGW_REPLICA_DSNS", "")
    monkeypatch.setenv("SSOGW_CONNECT_TIMEOUT_S", "1")
    assert main(argv) == 1
    assert "server.store_unavailable" in capsys.readouterr().err


def test_a_refused_request_exits_2_with_its_client_code(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SSOGW_PRIMARY_DSN", "postgresql://nobody@127.0.0.1:1/none")
    assert main(["audit", "lookups", "--national-id", "1234567890123"]) == 2
    assert "client.invalid_national_id" in capsys.readouterr().err


def test_the_seed_progress_off_a_terminal_is_plain_lines_with_rate_and_time_left() -> None:
    stream = io.StringIO()  # not a terminal: no bar, a line at each interval and at the end
    progress = SeedProgress(1_000, quiet=False, stream=stream, every_s=0.0)
    progress.update(250)
    progress.update(750)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("250 of 1,000 persons (25 %), ") and "persons/s" in lines[0]
    assert lines[0].endswith(" s left") and lines[1].startswith("1,000 of 1,000 persons (100 %)")
    quiet = io.StringIO()
    SeedProgress(1_000, quiet=True, stream=quiet, every_s=0.0).update(1_000)
    assert quiet.getvalue() == ""
