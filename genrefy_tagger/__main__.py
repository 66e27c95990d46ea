"""``python -m genrefy_tagger`` is ``genrefy-tag``."""

from genrefy_tagger.cli import main

if __name__ == "__main__":
    main()
