"""Database plumbing: the embedded cluster, engines and migrations."""
