"""The ``debtgate`` command.

Each subcommand imports what it runs when it runs: ``debtgate portal`` (the
unprivileged process) never loads the daemon's packages, the client commands never load
the engine, ``debtgate --version`` loads nothing. These function-local imports are for
that, not to dodge a cycle (import-linter checks there is none).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from debtgate import __version__
from debtgate.errors import ConfigError, DebtgateError

DEFAULT_CONFIG = Path("/etc/debtgate/debtgate.toml")


def setup_logging(level: str = "info") -> None:
    logging.basicConfig(
        level=level.upper(), stream=sys.stdout,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def _cmd_run(args: argparse.Namespace) -> int:
    from debtgate.config import load_config  # noqa: PLC0415
    from debtgate.daemon.app import run  # noqa: PLC0415

    config = load_config(args.config)
    setup_logging(config.daemon.log_level)
    run(args.config)
    return 0


def _cmd_check(args: argparse.Namespace) -> int:
    from debtgate.cli.preflight import startup_problems  # noqa: PLC0415
    from debtgate.config import load_config  # noqa: PLC0415
    from debtgate.daemon.app import ruleset_of  # noqa: PLC0415

    config = load_config(args.file)
    problems = startup_problems(config)
    if problems:
        raise ConfigError([f"{args.file}: {p}" for p in problems])
    ruleset_of(config)
    print(f"{args.file}: OK")
    return 0


def _cmd_ruleset(args: argparse.Namespace) -> int:
    from debtgate.config import load_config  # noqa: PLC0415
    from debtgate.daemon.app import ruleset_of  # noqa: PLC0415

    sys.stdout.write(ruleset_of(load_config(args.config)))
    return 0


def _cmd_lab(args: argparse.Namespace) -> int:
    from debtgate_lab.lab import main as lab_main  # noqa: PLC0415 - the lab, on demand

    return lab_main(args)


def _cmd_portal(args: argparse.Namespace) -> int:
    from debtgate.config import load_config  # noqa: PLC0415
    from debtgate.portal.cli import run_from_config  # noqa: PLC0415

    config = load_config(args.config)
    setup_logging(config.daemon.log_level)
    return run_from_config(config, workers=args.workers)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="debtgate", description=__doc__)
    parser.add_argument("--version", action="version", version=f"debtgate {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("run", help="run the enforcement daemon")
    p.add_argument("--config", type=Path, default=DEFAULT_CONFIG)
    p.set_defaults(func=_cmd_run)
    p = sub.add_parser("check-config", help="validate a config file and exit")
    p.add_argument("file", type=Path)
    p.set_defaults(func=_cmd_check)
    p = sub.add_parser("nft-ruleset", help="print the ruleset with this config's values "
                       "(install it as /etc/nftables.d/debtgate.nft)")
    p.add_argument("--config", type=Path, default=DEFAULT_CONFIG)
    p.set_defaults(func=_cmd_ruleset)
    p = sub.add_parser("portal", help="run the captive portal (unprivileged)")
    p.add_argument("--config", type=Path, default=DEFAULT_CONFIG)
    p.add_argument("--workers", type=int, default=None)
    p.set_defaults(func=_cmd_portal)
    p = sub.add_parser("lab", help="build a lab of network namespaces and run debtgate in it")
    p.add_argument("--billing", choices=["file", "postgres"], default="file")
    p.add_argument("--no-portal", action="store_true", help="a placeholder instead of the portal")
    p.add_argument("--workdir", type=Path, default=None)
    p.set_defaults(func=_cmd_lab)
    from debtgate.cli.commands import add_client_commands  # noqa: PLC0415

    add_client_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return 2
    except DebtgateError as exc:
        print(f"debtgate: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
