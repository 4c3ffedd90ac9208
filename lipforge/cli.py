"""The `lipforge` command: user-facing actions around the DVC pipeline."""
from __future__ import annotations

import argparse
import sys


def _check_params(args) -> int:
    from lipforge.params import ParamsError, load_params

    try:
        load_params(args.path)
    except ParamsError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"{args.path}: ok")
    return 0


def _doctor(args) -> int:
    from lipforge.doctor import run_doctor

    return run_doctor()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lipforge", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("doctor", help="show backends, tools and weight files, and what `auto` picks")
    p.set_defaults(fn=_doctor)
    p = sub.add_parser("check-params", help="validate params.yaml against the schema")
    p.add_argument("path", nargs="?", default="params.yaml")
    p.set_defaults(fn=_check_params)
    args = parser.parse_args(argv)
    return args.fn(args)


if __name__ == "__main__":
    sys.exit(main())
