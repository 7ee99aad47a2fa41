# The image every Airflow component runs: Airflow 3.3 plus sensorlog's pinned dependencies.
FROM apache/airflow:3.3.2-python3.11
COPY --chown=airflow:root requirements.lock /opt/sensorlog/requirements.lock
RUN pip install --no-cache-dir -r /opt/sensorlog/requirements.lock \
    "apache-airflow-providers-celery==3.26.0" "apache-airflow-providers-postgres==7.1.1" "psycopg2-binary==2.9.13"
COPY --chown=airflow:root . /opt/sensorlog
RUN pip install --no-cache-dir --no-deps -e /opt/sensorlog
