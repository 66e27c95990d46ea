"""Running a library: the run itself, the analysis cache, the Ray pool, plans and --apply's
checks, the progress bar."""
