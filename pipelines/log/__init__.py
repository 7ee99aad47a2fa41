"""sensorlog's transparency log: the writer, the reader, verify, prove, the static export and witnessing."""
