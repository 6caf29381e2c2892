"""Building blocks of the production topology (PostgreSQL first)."""
