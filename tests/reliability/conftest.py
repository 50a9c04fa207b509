"""tests/reliability imports its shared attacks module as `attacks`."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
