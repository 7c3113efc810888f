"""The HTML report (`--report-html FILE`): one self-contained page a person reads, a change board approves.

Totals per outcome, a matrix of rules by accounts, and every finding with its change, reason and pre-state,
filterable by outcome, rule, account and text (also from the address: `report.html#outcome=failed&rule=S3.8`).
No external assets: styles and the small filter script are inline, and the page's Content-Security-Policy
forbids loading anything else. Every value from a finding is escaped; the page reads the same without script.
"""

from __future__ import annotations

import html
import json
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

# Outcomes in the order a reader wants them: what changed first, what needs attention last. Rollback adds its own.
ORDER = ("remediated", "restored", "started", "planned", "unchanged", "noop", "notified", "excluded", "skipped",
         "refused", "failed")
_COLOURS = {
    "remediated": "#1a7f37", "restored": "#1a7f37", "started": "#0969da", "planned": "#8250df",
    "unchanged": "#57606a", "noop": "#57606a", "notified": "#9a6700", "excluded": "#57606a",
    "skipped": "#bc4c00", "refused": "#bc4c00", "failed": "#cf222e",
}

_STYLE = """
:root { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1f2328; }
body { margin: 0 auto; padding: 24px 32px; max-width: 1400px; }
h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 16px; margin: 28px 0 8px; }
.sub { color: #57606a; margin: 0 0 16px; }
.totals { display: flex; flex-wrap: wrap; gap: 10px; }
.total { border: 1px solid #d0d7de; border-radius: 8px; padding: 8px 14px; min-width: 90px; cursor: pointer;
  background: #fff; text-align: left; font: inherit; }
.total b { display: block; font-size: 24px; } .total span { color: #57606a; }
.total[aria-pressed="true"] { outline: 2px solid #0969da; }
table { border-collapse: collapse; width: 100%; }
th, td { border-bottom: 1px solid #d8dee4; padding: 6px 8px; text-align: left; vertical-align: top; }
th { background: #f6f8fa; font-weight: 600; position: sticky; top: 0; }
.matrix { width: auto; }
.matrix td, .matrix th { text-align: center; white-space: nowrap; padding: 6px 18px; }
.matrix td:first-child { text-align: left; }
.matrix a { color: inherit; text-decoration: none; display: block; }
.chip { display: inline-block; border-radius: 10px; padding: 0 7px; color: #fff; font-size: 12px; margin: 1px; }
.filters { display: flex; flex-wrap: wrap; gap: 8px; align-items: center; margin: 8px 0 10px; }
.filters select, .filters input { font: inherit; padding: 3px 6px; }
.filters input { min-width: 260px; }
td.reason { max-width: 560px; } code, pre { font: 12px/1.4 ui-monospace, SFMono-Regular, Menlo, monospace; }
pre { white-space: pre-wrap; word-break: break-all; margin: 4px 0; background: #f6f8fa; padding: 6px; }
ul.changes { margin: 0; padding-left: 18px; }
tr[hidden] { display: none; } .muted { color: #57606a; }
"""

# Filters rows by outcome / rule / account / text, from the controls and the address (#outcome=failed&rule=S3.8),
# counts what is shown, and recounts the totals from the rows (so they are what the page really holds).
_SCRIPT = """
(function () {
  var rows = Array.prototype.slice.call(document.querySelectorAll("#findings tbody tr"));
  var controls = {outcome: document.getElementById("f-outcome"), rule: document.getElementById("f-rule"),
                  account: document.getElementById("f-account"), text: document.getElementById("f-text")};
  function apply() {
    var want = {}, shown = 0;
    Object.keys(controls).forEach(function (k) { want[k] = controls[k].value.trim(); });
    want.text = want.text.toLowerCase(); want.rule = want.rule.toLowerCase();
    rows.forEach(function (row) {
      var ok = (!want.outcome || row.dataset.outcome === want.outcome) &&
               (!want.rule || row.dataset.rule.toLowerCase() === want.rule) &&
               (!want.account || row.dataset.account === want.account) &&
               (!want.text || row.textContent.toLowerCase().indexOf(want.text) >= 0);
      row.hidden = !ok; if (ok) shown += 1;
    });
    document.getElementById("shown").textContent = shown + " of " + rows.length + " findings shown";
    document.querySelectorAll(".total").forEach(function (b) {
      b.setAttribute("aria-pressed", String(b.dataset.outcome === want.outcome));
    });
  }
  function fromHash() {
    var params = new URLSearchParams(location.hash.slice(1));
    Object.keys(controls).forEach(function (k) { controls[k].value = params.get(k) || ""; });
    apply();
  }
  var counts = {};
  rows.forEach(function (row) { counts[row.dataset.outcome] = (counts[row.dataset.outcome] || 0) + 1; });
  document.querySelectorAll(".total").forEach(function (b) {
    b.querySelector("b").textContent = counts[b.dataset.outcome] || 0;
    b.addEventListener("click", function () {
      controls.outcome.value = controls.outcome.value === b.dataset.outcome ? "" : b.dataset.outcome; apply();
    });
  });
  Object.keys(controls).forEach(function (k) { controls[k].addEventListener("input", apply); });
  window.addEventListener("hashchange", fromHash);
  fromHash();
  document.body.dataset.ready = "true";
})();
"""

_CSP = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:"


def render_html(results: Iterable[Any], title: str, subtitle: str = "") -> str:
    """The page for results of plan/apply/run (Result), ledger rows (show) or rollback results (dicts)."""
    rows = [_row(r) for r in results]
    counts = Counter(r["outcome"] for r in rows)
    outcomes = [o for o in ORDER if counts.get(o)] + sorted(o for o in counts if o not in ORDER)
    e = html.escape
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{e(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{e(title)}</h1>",
        f'<p class="sub">{e(subtitle) + " · " if subtitle else ""}{len(rows)} finding(s) · generated '
        f'{time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}</p>',
        '<h2>Totals</h2><div class="totals" id="totals">',
    ]
    for outcome in outcomes:
        parts.append(f'<button type="button" class="total" data-outcome="{e(outcome)}" '
                     f'style="border-left: 6px solid {_COLOURS.get(outcome, "#57606a")}">'
                     f"<b>{counts[outcome]}</b><span>{e(outcome)}</span></button>")
    parts.append("</div>")
    parts += _matrix(rows, outcomes)
    parts += _findings(rows, outcomes)
    parts.append(f"<script>{_SCRIPT}</script></body></html>")
    return "\n".join(parts) + "\n"


def write_html(path: str, results: Iterable[Any], title: str, subtitle: str = "") -> None:
    Path(path).write_text(render_html(results, title, subtitle), encoding="utf-8")


def _row(result: Any) -> dict[str, Any]:
    row: Mapping[str, Any] = result if isinstance(result, Mapping) else result.to_dict()
    changes = row.get("changes") or row.get("restored") or []
    return {
        "outcome": str(row.get("outcome") or "?"),
        "rule_id": str(row.get("rule_id") or ""),
        "account_id": str(row.get("account_id") or ""),
        "region": str(row.get("region") or ""),
        "resource_id": str(row.get("resource_id") or ""),
        "reason": str(row.get("reason") or ""),
        "changes": [str(c) for c in changes],
        "pre_state": row.get("pre_state"),
        "post_state": row.get("post_state"),
        "execution_id": row.get("execution_id"),
    }


def _chips(counter: Counter[str], outcomes: Sequence[str]) -> str:
    return "".join(f'<span class="chip" style="background:{_COLOURS.get(o, "#57606a")}" title="{html.escape(o)}">'
                   f"{counter[o]} {html.escape(o)}</span>" for o in outcomes if counter.get(o))


def _matrix(rows: Sequence[dict[str, Any]], outcomes: Sequence[str]) -> list[str]:
    e = html.escape
    accounts = sorted({r["account_id"] for r in rows})
    cells: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    for r in rows:
        cells[(r["rule_id"], r["account_id"])][r["outcome"]] += 1
    out = ['<h2>Rules &times; accounts</h2><table class="matrix"><thead><tr><th>rule</th>',
           *(f"<th>{e(a)}</th>" for a in accounts), "</tr></thead><tbody>"]
    for rule in sorted({r["rule_id"] for r in rows}):
        out.append(f"<tr><td><code>{e(rule)}</code></td>")
        for account in accounts:
            counter = cells.get((rule, account))
            link = "#" + e(f"rule={_fragment(rule)}&account={_fragment(account)}")
            out.append(f'<td><a href="{link}">{_chips(counter, outcomes)}</a></td>' if counter
                       else '<td class="muted">·</td>')
        out.append("</tr>")
    out.append("</tbody></table>")
    return out


def _findings(rows: Sequence[dict[str, Any]], outcomes: Sequence[str]) -> list[str]:
    e = html.escape

    def options(values: Iterable[str]) -> str:
        return '<option value="">all</option>' + "".join(f'<option value="{e(v)}">{e(v)}</option>' for v in values)

    out = [
        "<h2>Findings</h2>",
        '<div class="filters">',
        f'<label>outcome <select id="f-outcome">{options(outcomes)}</select></label>',
        f'<label>rule <select id="f-rule">{options(sorted({r["rule_id"] for r in rows}))}</select></label>',
        f'<label>account <select id="f-account">{options(sorted({r["account_id"] for r in rows}))}</select></label>',
        '<label>text <input id="f-text" type="search" placeholder="resource, reason, change…"></label>',
        f'<span id="shown" class="muted">{len(rows)} of {len(rows)} findings shown</span></div>',
        '<table id="findings"><thead><tr><th>outcome</th><th>rule</th><th>account</th><th>region</th>'
        "<th>resource</th><th>change and reason</th></tr></thead><tbody>",
    ]
    order = {o: n for n, o in enumerate(ORDER)}
    for r in sorted(rows, key=lambda r: (order.get(r["outcome"], len(order)), r["rule_id"], r["account_id"],
                                         r["resource_id"])):
        detail = []
        if r["changes"]:
            detail.append('<ul class="changes">' + "".join(f"<li>{e(c)}</li>" for c in r["changes"]) + "</ul>")
        if r["reason"] and r["reason"] not in ("; ".join(r["changes"]),):
            detail.append(f"<div>{e(r['reason'])}</div>")
        for label, key in (("pre-state", "pre_state"), ("set by the run", "post_state")):
            if r[key]:
                text = json.dumps(r[key], indent=1, sort_keys=True, default=str)
                detail.append(f"<details><summary>{label}</summary><pre>{e(text)}</pre></details>")
        if r["execution_id"]:
            detail.append(f"<div class=\"muted\">SSM execution {e(str(r['execution_id']))}</div>")
        colour = _COLOURS.get(r["outcome"], "#57606a")
        out.append(
            f'<tr data-outcome="{e(r["outcome"])}" data-rule="{e(r["rule_id"])}" data-account="{e(r["account_id"])}">'
            f'<td><span class="chip" style="background:{colour}">{e(r["outcome"])}</span></td>'
            f'<td><code>{e(r["rule_id"])}</code></td><td>{e(r["account_id"])}</td><td>{e(r["region"])}</td>'
            f'<td><code>{e(r["resource_id"])}</code></td><td class="reason">{"".join(detail)}</td></tr>'
        )
    out.append("</tbody></table>")
    return out


def _fragment(value: str) -> str:
    """A value in the address fragment the script reads with URLSearchParams."""
    return quote(value, safe="")
