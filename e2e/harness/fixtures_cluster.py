"""pytest fixtures for the local Kubernetes control plane."""
