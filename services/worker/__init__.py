"""The task worker: claims pending tasks from the task service, runs a processor per task type, and
reports each outcome (done with output, failed with refund, or released for a retry)."""
