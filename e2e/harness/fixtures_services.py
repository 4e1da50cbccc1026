"""pytest fixtures for the real services (Redis, PostgreSQL, PgBouncer, Prometheus)."""
