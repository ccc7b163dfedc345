-- The warehouse gets a database of its own beside Dagster's storage (POSTGRES_DB=dagster).
CREATE DATABASE warehouse OWNER persona;
