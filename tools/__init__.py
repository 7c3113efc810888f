"""Build-time tools (template and docs generators, packaging): never shipped in the Lambda zip."""
