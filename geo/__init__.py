"""Geofencing core: zones, the spatial index, visits (pure, no I/O)."""
