"""``python -m pipelines.cli``: the ``sensorlog`` command."""

from pipelines.cli import main

if __name__ == "__main__":
    main()
