"""What ``switchy run`` shows on the terminal: live progress and the final summary."""

from __future__ import annotations

import statistics
from collections import deque
from dataclasses import dataclass

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from switchy.loadgen.originator import Originator

__all__ = ["Progress", "RateMeter", "percentile", "summary_table"]


def percentile(values: list[float], fraction: float) -> float | None:
    """The ``fraction`` quantile of ``values`` (None when empty)."""
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[round(fraction * 100) - 1]


class RateMeter:
    """Attempts per second over a sliding window of ``window`` seconds."""

    def __init__(self, window: float = 5.0) -> None:
        self.window = window
        self._samples: deque[tuple[float, int]] = deque()

    def update(self, now: float, attempted: int) -> float:
        """Record the attempted total at ``now``; return the rate over the window."""
        samples = self._samples
        samples.append((now, attempted))
        while len(samples) > 2 and now - samples[1][0] >= self.window:
            samples.popleft()
        first_time, first_count = samples[0]
        span = now - first_time
        return (attempted - first_count) / span if span > 0 else 0.0


@dataclass
class Progress:
    """A snapshot of a running originator, rendered as the live panel."""

    title: str
    originator: Originator
    achieved_rate: float
    elapsed: float

    def render(self) -> RenderableType:
        gen = self.originator
        latencies = list(gen.setup_latencies)
        p50, p99 = percentile(latencies, 0.5), percentile(latencies, 0.99)
        table = Table(box=None, pad_edge=False, header_style="bold")
        for column in (
            "offered",
            "attempted",
            "answered",
            "failed",
            "blocked",
            "active / limit",
            "rate target / achieved",
            "setup p50 / p99",
        ):
            table.add_column(column, justify="right")
        table.add_row(
            f"{gen.offered:,}",
            f"{gen.attempted:,}",
            f"[green]{gen.answered:,}[/]",
            f"[red]{gen.failed:,}[/]" if gen.failed else "0",
            f"[yellow]{gen.blocked:,}[/]" if gen.blocked else "0",
            f"{gen.active_calls:,} / {gen.limit:,}",
            f"{gen.rate:g} / {self.achieved_rate:.1f} cps",
            f"{_ms(p50)} / {_ms(p99)}",
        )
        header = Text.assemble(
            (self.title, "bold"),
            "  ",
            (f"[{gen.state}]", "cyan"),
            f"  elapsed {_clock(self.elapsed)}",
            self._remaining(),
        )
        parts: list[RenderableType] = [header, table]
        if gen.failures:
            top = ", ".join(f"{cause} {n:,}" for cause, n in gen.failures.most_common(5))
            parts.append(Text(f"failures: {top}", style="red"))
        return Group(*parts)

    def _remaining(self) -> str:
        gen = self.originator
        if gen.max_offered is None or gen.rate <= 0 or gen.state != "ORIGINATING":
            return ""
        left = max(gen.max_offered - gen.offered, 0) / gen.rate
        return f"  remaining ~{_clock(left)}"


def summary_table(originator: Originator, wall_seconds: float, results: str | None) -> Table:
    """The table printed when a run ends."""
    gen = originator
    latencies = list(gen.setup_latencies)
    seizures = gen.attempted
    table = Table(title="switchy run: summary", show_header=False, title_style="bold")
    table.add_column(justify="left", style="bold")
    table.add_column(justify="right")
    rows = [
        ("offered", f"{gen.offered:,}"),
        ("attempted", f"{gen.attempted:,}"),
        ("answered", f"{gen.answered:,}"),
        ("failed", f"{gen.failed:,}"),
        ("blocked at the generator", f"{gen.blocked:,}"),
        ("ASR (answered / attempted)", f"{gen.answered / seizures:.1%}" if seizures else "-"),
        (
            "offered rate",
            f"{gen.offered_rate:.2f} cps (target {gen.rate:g})" if gen.offered > 1 else "-",
        ),
        ("peak concurrent calls", f"{gen.peak_active_calls:,} (limit {gen.limit:,})"),
        (
            "setup latency p50 / p99",
            f"{_ms(percentile(latencies, 0.5))} / {_ms(percentile(latencies, 0.99))}",
        ),
        ("run time", _clock(wall_seconds)),
    ]
    for cause, count in gen.failures.most_common():
        rows.append((f"  failed: {cause}", f"{count:,}"))
    for loss in gen.node_losses:
        down = f"down {loss.seconds_down:.1f} s" if loss.seconds_down is not None else "never back"
        rows.append((f"node lost: {loss.node}", f"{down}, {loss.calls_lost:,} calls lost"))
    if gen.failure:
        rows.append(("run failed", gen.failure))
    if results:
        rows.append(("results", results))
    for name, value in rows:
        table.add_row(name, value)
    return table


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.0f} ms"


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"
