"""Applies the IOLAB_OS profile to every Python started with this folder on
PYTHONPATH (Python imports `sitecustomize` at start-up). The grader puts it
there for the server under test; see servers/platforms.py."""

import os
import sys

_profile = os.environ.get("IOLAB_OS", "")
if _profile and _profile != "linux":
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    try:
        import platforms

        platforms.emulate(_profile)
    finally:
        sys.path.pop(0)
