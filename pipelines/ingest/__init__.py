"""Phase one of the data flow: a landed file becomes a staged batch (pure, parallel)."""
