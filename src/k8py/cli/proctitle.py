"""The title a supervised process shows in `ps` and `top`: `k8py <component> --data-dir DIR`.

Uses setproctitle when it is installed (the process's command line then reads as that
title); without it, the argv the supervisor gives (`python -m k8py.cli.main <component>
--data-dir DIR`) names the component as well.
"""

from __future__ import annotations

import sys


def name_process(component: str) -> None:
    try:
        from setproctitle import setproctitle
    except ImportError:
        return
    rest = sys.argv[sys.argv.index(component) + 1:] if component in sys.argv else []
    setproctitle(" ".join(["k8py", component, *rest]))
