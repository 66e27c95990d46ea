"""Reports: JSON/CSV rows, Parquet, the review page."""
