"""Helpers shared by the test directories (importable as `helpers.<module>`: pytest puts
tests/ on sys.path because tests/conftest.py lives there). Holds no tests."""
