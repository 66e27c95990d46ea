"""genrefy: listen to a music library and tag each track's genre."""

__version__ = "0.2.0"
