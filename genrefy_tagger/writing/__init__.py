"""Writing tags: where each format keeps the genre, the verified atomic write, provenance, the
journal and undo."""
