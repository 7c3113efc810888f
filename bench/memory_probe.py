"""The memory check, in a fresh interpreter: pull n Netskope violations → Engine.stream() (plan) → counters.

`python -m bench.memory_probe URL N` prints one JSON object. Run once per size by the bench, so each size
starts from the same state (imports done, nothing else allocated yet) and the peak is the run's own: the
resident-set high-water mark is reset after the imports (`/proc/self/clear_refs`) and read at the end, minus
the resident set at the start. tracemalloc would be exact but slows this run about tenfold.

No role is configured and the accounts are not the caller's, so each finding stops at the session lookup
instead of reading a resource: 100,000 moto reads would take many minutes, and a read's memory is transient (the
timed plan phase measures it). Everything else — paging, parsing, offline decisions, dedupe, chunking, the
account thread pool, results — runs as in a real plan.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from collections.abc import Sequence

from bench.measure import measured
from bench.phases import MAX_WORKERS, bench_config
from connectors.finding import FindingError
from demo.moto_org import TOKEN_SECRET
from functions.engine.engine import Engine
from functions.engine.pipeline import PullStats, pull_netskope
from functions.engine.sessions import AssumedSessions


def probe(netskope_url: str, n: int) -> dict[str, object]:
    stats = PullStats()
    engine = Engine(bench_config(), AssumedSessions(), stage="plan", max_workers=MAX_WORKERS)
    outcomes: Counter[str] = Counter()
    with measured() as sample:
        items = pull_netskope(netskope_url, TOKEN_SECRET, stats=stats)
        for result in engine.stream(item for item in items if not isinstance(item, FindingError)):
            outcomes[result.outcome] += 1
    return {
        "n": n, "findings": sum(outcomes.values()), "outcomes": dict(outcomes),
        "wall_s": sample.wall, "cpu_s": sample.cpu,
        "rss_start_mib": sample.start_mib, "rss_peak_mib": sample.peak_mib,
        "peak_growth_mib": (sample.peak_mib or 0.0) - (sample.start_mib or 0.0),
        "netskope_requests": stats.requests.get("netskope", 0), "netskope_items": stats.findings + stats.rejected,
    }


def main(argv: Sequence[str] | None = None) -> int:
    url, n = (argv if argv is not None else sys.argv[1:])[:2]
    print(json.dumps(probe(url, int(n))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
