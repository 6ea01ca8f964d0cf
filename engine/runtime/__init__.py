"""Runtimes that serve a system: the legacy RPC runtime (v1) and, later, the port runtime (v2)."""
