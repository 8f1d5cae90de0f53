"""Schema revisions, oldest first. Each file is written by hand and reviewed."""
