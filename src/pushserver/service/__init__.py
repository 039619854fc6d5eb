"""Service status, health probes and metrics."""
