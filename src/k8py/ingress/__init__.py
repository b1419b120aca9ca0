"""The ingress controller: networking.k8s.io Ingresses served by a real nginx (render.py:
the config from the cluster's objects; nginx.py: the process; controller.py: the sync)."""
