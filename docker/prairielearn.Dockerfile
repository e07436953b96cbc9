# iolab's PrairieLearn external-grader image. Built by docker/prairielearn-image.sh,
# never by hand: on top of the project's runtime image (Python, a venv with Locust,
# built without a registry by docker/build-images.sh), the grader, the OS
# profiles and the server labs' lab.yaml. No answers: the image is public on Docker
# Hub once pushed, so the reference servers come from the course's private
# serverFilesCourse/iolab/ at grading time (run.sh). PrairieLearn runs
# /opt/iolab/run.sh LAB EXERCISE as root with the job in /grade.
ARG BASE
FROM ${BASE}
COPY iolab /opt/iolab
# Root only: the server under test runs as another uid (grader/sandbox.py).
RUN chmod -R go= /opt/iolab && chmod 700 /opt/iolab/run.sh \
 && python -c 'import locust, yaml, jinja2'
ENV IOLAB_SANDBOX=1 PYTHONDONTWRITEBYTECODE=1
WORKDIR /opt/iolab
LABEL org.iolab.image=prairielearn
CMD ["/opt/iolab/run.sh"]
