"""The grader, packaged for where courses grade (ARCHITECTURE.md, Contract 7).

- Gradescope: `python -m grader export gradescope LAB OUT.zip` (gradescope.py)
  writes an autograder zip whose scripts are in grader/export/gradescope/.
- PrairieLearn: an external-grader image built by docker/prairielearn-image.sh,
  whose entrypoint is grader/export/prairielearn/run.sh.
Both grade in their container with autograde.py: local mode, the server in
the sandbox (grader/sandbox.py), results in the platform's own format.
"""
