"""`make bench`: throughput and API economy of pull → plan → apply on a synthetic organization (DESIGN §7)."""
