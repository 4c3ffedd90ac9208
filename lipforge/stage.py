"""What every stage entry point shares: load params.yaml once, turn user errors into one line and exit 2."""
from __future__ import annotations

import sys
from typing import Callable

from lipforge.params import Params, ParamsError, load_params


class StageError(RuntimeError):
    """An input problem the user can act on (missing upstream output, bad corpus root...)."""


def stage_main(run: Callable[[Params], dict], params_path: str = "params.yaml") -> None:
    try:
        params = load_params(params_path)
        run(params)
    except (ParamsError, StageError) as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
