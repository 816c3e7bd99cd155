"""Run several `linear-nets` commands in one process, for tests/test_distributed.py to launch under torchrun once.

    torchrun --standalone --nproc-per-node=2 tests/torchrun_driver.py COMMANDS.json

COMMANDS.json is a list of argument lists; the exit status is the largest of theirs. Each command joins the process
group and leaves it, as a separate launch would; one launch saves the start-up of torch per command.
"""

import json
import sys
from pathlib import Path

if __name__ == "__main__":
    from linear_nets.cli import main

    commands = json.loads(Path(sys.argv[1]).read_text())
    sys.exit(max(main(argv) for argv in commands))
