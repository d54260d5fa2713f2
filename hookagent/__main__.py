"""`python -m hookagent`."""
import sys

from hookagent.main import main

sys.exit(main())
