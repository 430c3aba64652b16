"""main.py with Python's cyclic garbage collector switched off, for the bench only.

throughput_bench.py --gc-off runs this beside main.py to see how much of the tail latency
is GC pauses. It changes nothing in the app: reference counting still frees almost every
object, and a cell lasts seconds, so the cycles left uncollected cost memory, not answers.
"""

import gc
import runpy
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

if __name__ == "__main__":
    gc.disable()
    sys.argv[0] = str(ROOT / "main.py")
    sys.path.insert(0, str(ROOT))
    runpy.run_path(str(ROOT / "main.py"), run_name="__main__")
