"""Not production code: the synthetic city, the demo and the Airflow runner."""
