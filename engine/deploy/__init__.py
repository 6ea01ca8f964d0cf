"""Processes, gateway, routes and deployment strategies."""
