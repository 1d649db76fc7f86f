"""What the loader says about each file (Outcome) and its one-line-per-file summary.

Its own module because every job of the loader reports in it (discovery's unroutable files, the decision's
loaded / waiting / quarantined, the ingest's unchanged and duplicate) and none of them should import
another job just for the type.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from trivsel.sources.base import RowIssue


@dataclass
class Outcome:
    municipality_code: str
    source: str
    period: str
    file_name: str
    status: str  # loaded | waiting | quarantined | duplicate | unchanged | unroutable
    scheme: str | None = None
    delivery_id: int | None = None
    rows: int = 0
    reason: str | None = None
    issues: list[RowIssue] = field(default_factory=list)

    def line(self) -> str:
        text = (f"{self.municipality_code}/{self.source}/{self.period} {self.file_name}: {self.status}"
                f" ({self.scheme or 'no scheme'}, {self.rows} rows)")
        if self.reason:
            text += f" — {self.reason}"
        return text


def summary_text(outcomes: list[Outcome]) -> str:
    return "\n".join(o.line() for o in outcomes) or "no deliveries"
