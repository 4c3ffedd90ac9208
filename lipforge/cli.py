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


def _lineage(args) -> int:
    import json
    from pathlib import Path

    from lipforge.dvclock import LockError
    from lipforge.gitinfo import GitError
    from lipforge import lineage as lin

    project = Path(args.project)
    try:
        if args.diff:
            (old, old_label), (new, new_label) = (lin.load_side(project, spec, args.report) for spec in args.diff)
            diff = lin.diff_lineage(old, new, old_label, new_label)
            print(json.dumps(diff, indent=2, default=str) if args.json else lin.format_diff(diff))
            return 0
        lineage = lin.lineage_at(project, args.report)
    except (LockError, GitError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.mermaid:
        out = project / args.mermaid
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(lin.mermaid_document(lineage))
        print(f"wrote {out}", file=sys.stderr)
    if args.json:
        print(json.dumps(lineage, indent=2, default=str))
    elif not args.mermaid:
        print(lin.format_lineage(lineage))
    return 0


def _history(args) -> int:
    from pathlib import Path

    import pandas as pd

    from lipforge import history as hist
    from lipforge.params import ParamsError, load_params

    project = Path(args.project)
    try:
        params = load_params(project / "params.yaml")
        if args.action == "record":
            accepted = True if args.accepted else False if args.rejected else None
            if not (project / args.metrics).is_file():
                print(f"warning: {project / args.metrics} not found; recording the run without metrics",
                      file=sys.stderr)
            row = hist.record_run(project, args.kind, accepted, args.reason, args.run_id, args.metrics)
            n = sum(k.startswith(hist.METRIC_PREFIX) for k in row)
            print(f"recorded {row['kind']} run {row['run_id']} (git {row['git_rev'] or '-'}, {n} metrics) in "
                  f"{hist.history_path(project, params)}")
            return 0
    except (ParamsError, hist.HistoryError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    path = hist.history_path(project, params)
    history = hist.load_history(path)
    if history.empty:
        print(f"no runs recorded in {path} yet; flows record theirs, `lipforge history record --kind manual` "
              "records a plain `dvc repro`")
        return 0
    gated = hist.gated_metrics(params)
    with pd.option_context("display.width", 200, "display.max_columns", None, "display.max_rows", None):
        print(hist.trend_table(history, gated).to_string(index=False, na_rep="-"))
    plot = project / args.plot
    hist.plot_history(history, gated, plot)
    print(f"wrote {plot}", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lipforge", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("doctor", help="show backends, tools and weight files, and what `auto` picks")
    p.set_defaults(fn=_doctor)
    p = sub.add_parser("check-params", help="validate params.yaml against the schema")
    p.add_argument("path", nargs="?", default="params.yaml")
    p.set_defaults(fn=_check_params)
    p = sub.add_parser("lineage", help="the chain of stages, params, hashes, backends and weights behind a report")
    p.add_argument("report", nargs="?", default="reports/metrics.json",
                   help="a file a stage outputs, relative to the project root (default: reports/metrics.json)")
    p.add_argument("--json", action="store_true", help="print JSON (a file `--diff` can compare)")
    p.add_argument("--mermaid", action="store_const", const="reports/lineage.md", default=None,
                   help="write a Mermaid graph of the stages to reports/lineage.md")
    p.add_argument("--diff", nargs=2, metavar=("A", "B"),
                   help="what differs between two lineages: lineage JSON files or git revisions")
    p.add_argument("-C", "--project", default=".", help="project root (default: current directory)")
    p.set_defaults(fn=_lineage)
    p = sub.add_parser("history", help="the trend of recorded runs (table + reports/history.png); "
                                       "`history record` adds a run")
    p.add_argument("-C", "--project", default=".", help="project root (default: current directory)")
    p.add_argument("--plot", default="reports/history.png", help="where to write the plot (default: %(default)s)")
    p.set_defaults(fn=_history, action=None)
    actions = p.add_subparsers(dest="action")
    r = actions.add_parser("record", help="append a row for the run in the working tree (e.g. after `dvc repro`)")
    r.add_argument("--kind", choices=["manual", "pipeline", "nightly"], default="manual")
    verdict = r.add_mutually_exclusive_group()
    verdict.add_argument("--accepted", action="store_true", help="mark the run accepted (default: not judged)")
    verdict.add_argument("--rejected", action="store_true", help="mark the run rejected")
    r.add_argument("--reason", default="", help="why it was accepted or rejected")
    r.add_argument("--run-id", default=None, help="default: a new random id")
    r.add_argument("--metrics", default="reports/metrics.json", help="the metrics report (default: %(default)s)")
    r.add_argument("-C", "--project", default=argparse.SUPPRESS, help="project root")
    args = parser.parse_args(argv)
    return args.fn(args)


if __name__ == "__main__":
    sys.exit(main())
