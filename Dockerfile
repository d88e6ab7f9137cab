# The project's image: one image for the code location, the run workers, the Celery workers, the
# Dagster webserver and daemon, the migrations, the dashboards and the HTTP API (docker-compose.yml,
# deploy/helm/).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DAGSTER_HOME=/opt/dagster/home \
    ODAVL_HOME=/var/lib/odavl

RUN useradd --create-home --uid 10001 odavl

# Installed in place (editable): the migrations, alembic.ini, seeds/ and dashboards/ are read
# from the source tree, as in a clone. With the `celery` extra: the same image runs the Celery
# workers (deploy/helm/celery-workers.yaml).
WORKDIR /opt/odavl
COPY . .
RUN pip install -e '.[celery,s3]' \
 && mkdir -p "$DAGSTER_HOME" /var/lib/odavl/landing /var/lib/odavl/marts /var/lib/dagster \
 && cp deploy/docker/dagster.yaml deploy/docker/workspace.yaml "$DAGSTER_HOME"/ \
 && chown -R odavl:odavl /var/lib/odavl /var/lib/dagster "$DAGSTER_HOME"

USER odavl
EXPOSE 3000 4000 8000 8421 8501
CMD ["dagster", "code-server", "start", "-h", "0.0.0.0", "-p", "4000", "-m", "odavl_pipeline.definitions"]
