"""Running pipelines outside the editor."""
