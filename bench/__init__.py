"""Benchmarks: run each as `python -m bench.<name>` from the repository root (see run_all.py)."""
