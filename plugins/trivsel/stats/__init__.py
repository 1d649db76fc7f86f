"""Significance tests from marts into reporting: pure functions plus one run(conn) per domain."""
