"""``python -m omnimatte_run``: the README's main job (see omnimatte_run.run_workflow)."""

import sys

from omnimatte_run.run_workflow import main

if __name__ == "__main__":
    sys.exit(main())
