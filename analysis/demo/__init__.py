"""The synthetic demonstration data generator: off the run path, imported only when needed."""
