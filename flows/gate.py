"""The nightly metric gate: does a new reports/metrics.json regress against the last accepted one?

Pure functions on parsed JSON. Semantics follow `dvc metrics diff`: metrics are addressed by dotted paths
into the JSON ("rows.stabilized.ssim"), `{method}` in a gate key stands for params train_generator.method.
A gated metric passes when it did not move in its bad direction by more than its absolute tolerance.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from lipforge.history import flatten_metrics, resolve_metric_key
from lipforge.params import GatedMetric

# Row statuses. Only REGRESSED and MISSING reject: a metric the baseline lacks (newly gated) has nothing to
# be compared with, and a first run has no baseline at all.
OK, REGRESSED, MISSING, NO_BASELINE = "ok", "regressed", "missing", "no baseline"


@dataclass(frozen=True)
class GateRow:
    metric: str
    old: float | None
    new: float | None
    direction: str
    tolerance: float
    status: str

    @property
    def change(self) -> float | None:
        return None if self.old is None or self.new is None else self.new - self.old

    def describe(self) -> str:
        def fmt(v):
            return "-" if v is None else f"{v:.6g}"

        change = "" if self.change is None else f" ({self.change:+.6g})"
        return (f"{self.metric}: {fmt(self.old)} -> {fmt(self.new)}{change}, {self.direction} is better, "
                f"tolerance {self.tolerance:g}: {self.status}")


def lookup(metrics: Mapping, path: str) -> float | None:
    """The number at a dotted path, or None when the path is absent or holds no finite number (the history's
    flattening: the same keys `lipforge history` records)."""
    return flatten_metrics(metrics).get(path)


def _judge(old: float | None, new: float | None, spec: GatedMetric) -> str:
    if new is None:
        return MISSING
    if old is None:
        return NO_BASELINE
    worse_by = old - new if spec.direction == "higher" else new - old
    return REGRESSED if worse_by > spec.tolerance else OK


def gate_decision(old: Mapping | None, new: Mapping, gate: Mapping[str, GatedMetric | dict],
                  method: str) -> tuple[bool, list[GateRow]]:
    """(accepted, one row per gated metric). `old` is the last accepted run's metrics, None (or empty) when
    no run was accepted yet: then every row is NO_BASELINE, or MISSING if the new run lacks the metric."""
    rows = []
    old_flat, new_flat = flatten_metrics(old) if old else {}, flatten_metrics(new)
    for key, spec in gate.items():
        spec = spec if isinstance(spec, GatedMetric) else GatedMetric.model_validate(spec)
        path = resolve_metric_key(key, method)
        old_value, new_value = old_flat.get(path), new_flat.get(path)
        rows.append(GateRow(path, old_value, new_value, spec.direction, spec.tolerance,
                            _judge(old_value, new_value, spec)))
    accepted = not any(r.status in (REGRESSED, MISSING) for r in rows)
    return accepted, rows


def describe_decision(accepted: bool, rows: list[GateRow]) -> str:
    """One line per gated metric, failing ones first, under a verdict line."""
    failing = [r for r in rows if r.status in (REGRESSED, MISSING)]
    verdict = "accepted" if accepted else f"rejected: {len(failing)} gated metric(s) failed"
    ordered = failing + [r for r in rows if r not in failing]
    return "\n".join([verdict] + [f"  {r.describe()}" for r in ordered])
