"""Exports of a migration plan to the tools larger teams run (Kubernetes with Argo Rollouts)."""
