"""Job machinery, below training: the workdir lease, storage faults, stop signals and exit, and the joining of a
multi-process job. Nothing here knows models, data or the train step."""
