"""Demo helpers: local fakes of outside services (Netskope), used by `make demo` and the end-to-end tests."""
