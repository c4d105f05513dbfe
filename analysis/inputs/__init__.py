"""Input: the feature summary, the package's own schema, and loading checked CSV files."""
