"""Base models: lookup by name, import into the catalogue."""
