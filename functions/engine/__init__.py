"""The engine core: decisions, configuration, catalog, ledger, sessions, runbooks, rollback."""
