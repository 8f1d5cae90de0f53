"""``python -m intercloud.agent``: run the node agent (see ``intercloud.agent.main``)."""

import sys

from intercloud.agent.main import main

sys.exit(main(sys.argv[1:]))
