"""PostgreSQL with Prometheus metrics, and health checks only for connections left idle."""
