"""What the tests share besides fixtures: test databases, worlds to test in, clocks, servers.

Fixtures live in ``tests/conftest.py``; everything a test imports lives here.
"""
