"""python -m review: serve the clinic review app (see review/serve.py)."""
import sys

from review.serve import main

sys.exit(main())
