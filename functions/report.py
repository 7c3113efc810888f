"""A report a person can read: what was found, done, skipped, and why — per rule and account."""

from __future__ import annotations

import html
import re
import textwrap
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence

from functions.model import OUTCOMES, Result

_COLUMNS = ("remediated", "started", "planned", "noop", "notified", "excluded", "skipped", "failed")
_EXPLAINED = ("planned", "notified", "excluded", "skipped", "failed", "started")


def outcome_counts(results: Iterable[Result]) -> dict[str, int]:
    counts = Counter(result.outcome for result in results)
    return {outcome: counts.get(outcome, 0) for outcome in OUTCOMES}


WIDTH = 100  # reports are read in terminals and email: long reasons wrap to this width


def render_text(results: Sequence[Result], title: str = "Remediation report", max_reasons: int = 200,
                width: int = WIDTH) -> str:
    lines = [title, "=" * len(title)]
    counts = outcome_counts(results)
    lines.append(
        f"{len(results)} finding(s): " + ", ".join(f"{counts[o]} {o}" for o in OUTCOMES if counts[o]) if results
        else "no findings"
    )
    if not results:
        return "\n".join(lines) + "\n"

    table: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    for result in results:
        table[(result.rule_id, result.account_id)][result.outcome] += 1
    header = ["rule", "account", "found", *_COLUMNS]
    rows = [
        [_clip(rule, 40), account, str(sum(counter.values())), *(str(counter.get(c, 0) or "") for c in _COLUMNS)]
        for (rule, account), counter in sorted(table.items())
    ]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines.append("")
    lines.append("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip())
    lines.append("  ".join("-" * w for w in widths))
    lines.extend("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows)

    trips = circuit_breaker_lines(results)
    if trips:
        lines += ["", "Circuit breaker:", *(wrap(line, width, "  ") for line in trips)]
    done = [r for r in results if r.outcome == "remediated"]
    if done:
        lines += ["", "Changed:"]
        lines += limited([wrap(f"[{r.rule_id}] {r.account_id} {r.region} {r.resource_id}: {r.reason}", width, "  ")
                          for r in done], max_reasons, "  ")
    explained = [r for r in results if r.outcome in _EXPLAINED and not r.circuit_breaker]
    if explained:
        lines += ["", "Not changed, and why:"]
        lines += limited([wrap(line, width, "  ") for line in _explained_lines(explained)], max_reasons, "  ")
    return "\n".join(lines) + "\n"


def limited(lines: Sequence[str], limit: int, indent: str = "  ") -> list[str]:
    """The first `limit` lines, then "… and N more" when there were more: a list is complete or says so."""
    if len(lines) <= limit:
        return list(lines)
    return [*lines[:limit], f"{indent}… and {len(lines) - limit} more (the JSON output has every result)"]


def wrap(text: str, width: int = WIDTH, indent: str = "  ") -> str:
    """One entry, wrapped at `width`; continuation lines are indented under the entry."""
    return "\n".join(textwrap.wrap(" ".join(text.split()), width, initial_indent=indent,
                                   subsequent_indent=indent + "    ", break_on_hyphens=False)) or indent


_TRIP = re.compile(r"(?P<n>\d+) actions (?P<scope>for rule \S+|in account \S+)")


def circuit_breaker_lines(results: Iterable[Result]) -> list[str]:
    """One line per limit hit, however many findings it held back (was one warning per finding)."""
    trips: Counter[tuple[str, str]] = Counter()
    for result in results:
        if result.circuit_breaker:
            match = _TRIP.search(result.reason)
            trips[(match["scope"], match["n"]) if match else (f"for rule {result.rule_id}", "")] += 1
    return [
        f"circuit breaker tripped {scope}{f' after {n} actions' if n else ''}; {count} finding(s) planned only"
        for (scope, n), count in sorted(trips.items())
    ]


def _explained_lines(results: Sequence[Result]) -> list[str]:
    """A reason shared by several findings of a rule is said once, with the count and the first resources."""
    groups: dict[tuple[str, str, str], list[Result]] = defaultdict(list)
    for r in results:
        reason = first_sentence(r.reason, 300) if r.outcome == "failed" else r.reason
        groups[(r.outcome, r.rule_id, reason)].append(r)
    lines = []
    for (outcome, rule_id, reason), group in groups.items():
        if len(group) == 1:
            r = group[0]
            lines.append(f"{outcome:<9} [{rule_id}] {r.account_id} {r.region} {r.resource_id}: {reason}")
            continue
        shown = ", ".join(f"{r.account_id} {r.region} {r.resource_id}" for r in group[:3])
        more = f" and {len(group) - 3} more" if len(group) > 3 else ""
        lines.append(f"{outcome:<9} [{rule_id}] {len(group)} findings ({shown}{more}): {reason}")
    return lines


def _clip(text: str, width: int) -> str:
    """Unknown source rules can be long sentences (`netskope:<rule name>`); keep the table readable."""
    return text if len(text) <= width else text[: width - 1] + "…"


_TAG = re.compile(r"<[^>]+>")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s")


def first_sentence(text: str, limit: int = 200) -> str:
    """One line from a message that may be an HTML error page or a paragraph: tags and blank lines dropped,
    cut at the first sentence end, at most `limit` characters."""
    text = html.unescape(_TAG.sub(" ", text or ""))
    text = " ".join(text.split())
    text = _SENTENCE_END.split(text, maxsplit=1)[0]
    return text if len(text) <= limit else text[: limit - 1] + "…"


def summarize_error(error: BaseException) -> str:
    """An error as one line: the HTTP status and error code when AWS sent them, then the first sentence."""
    response = getattr(error, "response", None)
    if isinstance(response, dict):
        code = response.get("Error", {}).get("Code")
        status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        message = response.get("Error", {}).get("Message") or str(error)
        head = " ".join(part for part in (code, f"(HTTP {status})" if status else None) if part)
        return f"{head}: {first_sentence(message)}" if head else first_sentence(message)
    return first_sentence(str(error)) or type(error).__name__


def render_table(header: Sequence[str], rows: Sequence[Sequence[str]], width: int | None = None,
                 flex: int | None = None, key_width: int | None = None) -> list[str]:
    """Aligned columns. With `width`, the `flex` column is wrapped so each line fits in it (nothing is cut). A
    first cell longer than `key_width` (an id too long for its column) stands on a line of its own, the row's
    other cells below it, so ids are never cut and the table stays narrow."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    if key_width is not None:
        widths[0] = max(len(header[0]), min(widths[0], key_width))
    if width is not None and flex is not None:
        others = sum(w for i, w in enumerate(widths) if i != flex) + 2 * (len(widths) - 1)
        widths[flex] = max(len(header[flex]), min(widths[flex], width - others), 12)

    def lines(row: Sequence[str]) -> list[str]:
        cells = [str(c) for c in row]
        out = []
        if len(cells[0]) > widths[0]:
            out.append(cells[0])
            cells[0] = ""
        wrapped = textwrap.wrap(cells[flex], widths[flex]) or [""] if flex is not None else []
        if flex is not None:
            cells[flex] = wrapped[0]
        out.append("  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip())
        indent = sum(widths[:flex]) + 2 * flex if flex is not None else 0
        out.extend(" " * indent + more for more in wrapped[1:])
        return out

    return [*lines(header), "  ".join("-" * w for w in widths), *(line for r in rows for line in lines(r))]
