"""Entry-point plumbing: the Dagster instance, running jobs from the CLI, guarded deletion."""
