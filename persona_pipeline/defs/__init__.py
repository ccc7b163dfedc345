"""Dagster wiring only: each asset reads inputs, calls the core, writes outputs and reports metadata."""

import warnings

# Dagster 1.13's own run-status sensor decorator passes a beta parameter and warns about itself on every import.
warnings.filterwarnings("ignore", message=r"Parameter `owners` of initializer `SensorDefinition")
