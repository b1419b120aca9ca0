"""Where the conformance corpus is: ../shared/k8s-examples beside the repository (as the
sessions and CI lay it out), or $K8PY_EXAMPLES."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = Path(os.environ.get("K8PY_EXAMPLES", REPO.parent / "shared" / "k8s-examples"))
