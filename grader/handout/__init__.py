"""`python -m grader handout LAB OUT`: a lab's student handout (build.py), its
lab.yaml without answers (labfile.py), and GitHub Classroom's report (classroom.py)."""

from grader.handout.build import build

__all__ = ["build"]
