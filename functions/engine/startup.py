"""Process start-up tuning, done once by each entry point (the CLI's main(), the Lambda handlers module).

A run creates a few hundred botocore clients (one per account, region and service): each builds thousands of
small container objects (operation methods, event-handler tables, endpoint rule trees) that live as long as the
run. With CPython's default thresholds the cyclic collector runs every 700 net allocations and keeps walking
everything already built (the parsed service models alone are tens of MB of dicts): measured at more than half
the CPU of creating clients. So: move everything alive after the imports out of the collector's sight
(gc.freeze), and collect the youngest generation every GEN0_THRESHOLD allocations instead of 700. Cycles are
still collected, only less often; reference counting frees everything else at once, as before.
"""

from __future__ import annotations

import gc

# Allocations between young-generation collections (CPython's default: 700). At ~100 bytes per container a
# young generation of 50,000 is a few MB held a little longer, against a collector that ran 70 times as often.
GEN0_THRESHOLD = 50_000
_tuned = False


def tune_gc() -> None:
    """Freeze what the imports built and space out the collections. Idempotent: a second call (a warm Lambda
    container, a test calling main() twice) changes nothing."""
    global _tuned
    if _tuned:
        return
    _tuned = True
    gc.collect()  # the imports' garbage goes now, not into the frozen generation
    gc.freeze()
    _, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(GEN0_THRESHOLD, gen1, gen2)
