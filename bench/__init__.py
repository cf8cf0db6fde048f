"""`make bench`: Zariz on Postgres under load, against a minimal FastAPI ceiling."""
