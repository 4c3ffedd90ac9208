"""Run ids shared by the flows, the run history and the accepted-runs folder."""
from __future__ import annotations

from datetime import datetime, timezone


def new_run_id(now: datetime, flow_run_id: str | None = None) -> str:
    """'20261121T020000Z-1a2b3c4d': UTC time first, so ids sort in the order runs started; the Prefect flow
    run's id prefix makes two runs in the same second distinct and leads to the run in the Prefect UI."""
    stamp = now.astimezone(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    suffix = str(flow_run_id).replace("-", "")[:8] if flow_run_id else "local"
    return f"{stamp}-{suffix}"
