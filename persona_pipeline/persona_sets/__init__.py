"""Persona sets as a domain: creating and changing them (catalog), their life (lifecycle), their build steps."""
