"""Running many jobs: the launcher behind the mprun-*.py files, its settings, the local queue and the Slurm backend."""
