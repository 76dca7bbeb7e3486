"""How the launcher runs a job: `python -m common.launch.profiled <script> <flags>` runs the script as
`python <script> <flags>` would (same sys.argv, sys.path[0] its folder) and writes the run's profile at
exit when HSTNN_PROFILE_FILE is set (common/launch/profiling.py). The script itself never knows a launcher."""
import os
import runpy
import sys

from common.launch.profiling import write_profile_at_exit


def main():
    if len(sys.argv) < 2:
        sys.exit("usage: python -m common.launch.profiled <script> [flags]")
    script = sys.argv[1]
    sys.argv = sys.argv[1:]
    sys.path[0] = os.path.dirname(os.path.abspath(script))
    write_profile_at_exit()
    runpy.run_path(script, run_name="__main__")


if __name__ == "__main__":
    main()
