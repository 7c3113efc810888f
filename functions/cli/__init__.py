"""The `cspm-remediate` command line."""
