"""Unit tests. A package, so that its modules can share helpers (test_calibrate_scoring uses test_compare's)."""
