"""The shell around the analysis: command line, inputs, cache and storage, rendering."""
