"""Shared fixtures: a tiny world in which the campaign acts early, and the command line run in-process."""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent

#: ``--set`` overrides that shrink the default scenario to a world that runs in about a second per paired world,
#: with the bots awake and the recruits active for most of the run.
SMALL_OVERRIDES = (
    "population.organic_users=1500",
    "days=6",
    "campaign.bots.activation_day=2",
    "campaign.recruits.recruit_day=1",
)


@dataclass
class CliResult:
    code: int
    out: str
    err: str


def invoke_cli(argv: list[str]) -> CliResult:
    """Run ``simulator.cli.main(argv)`` in this process, capturing stdout/stderr and argparse's SystemExit."""
    from simulator.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main([str(a) for a in argv])
        except SystemExit as exc:  # argparse errors exit from inside main
            code = exc.code if isinstance(exc.code, int) else 1
    return CliResult(code, out.getvalue(), err.getvalue())


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def small_overrides() -> list[str]:
    """The small-world overrides as ``path=value`` strings (for ``load_scenario(..., overrides)``)."""
    return list(SMALL_OVERRIDES)


@pytest.fixture(scope="session")
def small_args() -> list[str]:
    """The small-world overrides as command-line arguments: ``["--set", "population.organic_users=1500", ...]``."""
    args: list[str] = []
    for o in SMALL_OVERRIDES:
        args += ["--set", o]
    return args


@pytest.fixture(scope="session")
def cli():
    """``cli([...])`` runs the command line in-process and returns ``CliResult(code, out, err)``."""
    return invoke_cli
