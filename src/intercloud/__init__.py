"""intercloud: an intercloud broker and fleet scheduler for AI compute."""

__version__ = "0.1.0"
