"""`python -m tools.scan [--rendered DIR] [--allowlist FILE]`: exit 1 on a finding the allowlist does not accept."""

from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from tools.scan import all_renderings, checkov_files, scan
from tools.scan.findings import ALLOWLIST, Allowlist, Finding


def report(unaccepted: list[Finding]) -> list[str]:
    """One line per finding, the renderings it occurs in folded together (one rule's policy recurs in many)."""
    places: dict[tuple[str, str, str, frozenset[str], str], list[str]] = defaultdict(list)
    for f in unaccepted:
        places[(f.scanner, f.check, f.where, f.actions, f.detail)].append(f.rendering)
    lines = []
    for (scanner, check, where, actions, detail), renderings in sorted(places.items(), key=lambda kv: kv[0][:3]):
        acted = f" [{', '.join(sorted(actions))}]" if actions else ""
        more = f" (+{len(renderings) - 1} more renderings)" if len(renderings) > 1 else ""
        lines.append(f"{scanner} {check} {renderings[0]}:{where}{more}{acted}{' - ' + detail if detail else ''}")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.scan", description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--rendered", type=Path, default=Path("build/rendered"),
                        help="where python -m tools.templates.resolve wrote the renderings (for checkov)")
    parser.add_argument("--allowlist", type=Path, default=ALLOWLIST)
    args = parser.parse_args(argv)
    started = time.monotonic()
    try:
        files = checkov_files(args.rendered)
    except FileNotFoundError as error:
        print(f"scan: {error}", file=sys.stderr)
        return 2
    result = scan(all_renderings(), files, Allowlist.load(args.allowlist))
    for line in report(result.unaccepted):
        print(line)
    for entry in result.allowlist.unused():
        print(f"scan: warning: allowlist entry {entry.scanner} {entry.check} {entry.where} matched nothing: "
              "remove it", file=sys.stderr)
    print(f"scan: {len(result.findings)} findings in {result.renderings} renderings and {len(files)} checkov files, "
          f"{len(result.findings) - len(result.unaccepted)} accepted by {args.allowlist.name}, "
          f"{len(result.unaccepted)} not ({time.monotonic() - started:.1f} s)", file=sys.stderr)
    return 1 if result.unaccepted else 0


if __name__ == "__main__":
    sys.exit(main())
