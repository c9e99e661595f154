"""The gem catalog."""
