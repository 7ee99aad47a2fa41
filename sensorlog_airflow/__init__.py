"""Airflow objects shared by the DAG files (Assets, watchers). The only package besides ``dags/``
that imports Airflow; ``pipelines`` never does."""
