"""Load tests and the seeded benchmark workload."""
