"""``python -m graders.forkserver``: run the fork server until the grader lets it go."""

import logging
import os

from graders.forkserver.server import main

status = main()
logging.shutdown()
# Skip the interpreter's teardown: unloading TensorFlow takes seconds.
os._exit(status)
