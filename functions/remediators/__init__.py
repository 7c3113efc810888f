"""One module per AWS service; each remediator declares its rules, permissions and runbook next to its code."""
