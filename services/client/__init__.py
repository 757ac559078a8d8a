"""The Python client library: typed calls to the coordinator, the evaluator fleet, the model server and the
trainer, with deadlines, retries of retryable codes only, and the project's exceptions on failure."""
