"""What acts on findings: the rule catalog, the remediators, the engine, and the entry points (CLI, Lambda)."""
