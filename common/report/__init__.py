"""Reading the runs' logs and records into the tables, plots and trade-off of latex-code-gen.py."""
