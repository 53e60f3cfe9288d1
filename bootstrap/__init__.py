"""studio-bootstrap: a cross-account CodeCommit repository in every Studio home."""

__version__ = "0.1.0"
