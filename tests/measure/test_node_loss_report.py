"""The report says which node was lost, when, for how long, and what it cost."""

from __future__ import annotations

from pathlib import Path

from switchy.measure.report import analyse, write_report
from switchy.measure.store import CDRStore

from .cdrs import hand_made


async def test_the_report_names_lost_nodes(tmp_path: Path) -> None:
    records = hand_made()
    start = min(record.scheduled_time for record in records)
    async with CDRStore(tmp_path / "run", {"rate": 10, "limit": 5}) as store:
        for record in records:
            store.append(record)
        summary = {
            "node_losses": [
                {
                    "node": "10.0.0.2:8021",
                    "lost_at": start + 2.0,
                    "back_at": start + 6.5,
                    "seconds_down": 4.5,
                    "calls_lost": 7,
                    "reason": "10.0.0.2:8021: connection lost",
                },
                {"node": "10.0.0.3:8021", "lost_at": start + 3.0, "calls_lost": 2},
            ]
        }
        await store.close("finished", summary)
    verdicts = analyse(tmp_path / "run").verdicts
    lines = [line for line in verdicts if "lost" in line]
    assert lines[0].startswith("node 10.0.0.2:8021 lost at +2.0 s, down 4.5 s: 7 calls lost")
    assert "never back" in lines[1]
    html = write_report(tmp_path / "run").read_text()
    assert "10.0.0.2:8021 lost" in html
