"""Presentation: the words, tables and charts the report pages show. Reads results only."""
