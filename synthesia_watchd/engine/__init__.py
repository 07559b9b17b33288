"""The engine: one stage of one job at a time, as modules that each return an outcome.

``settings`` parses a job's frozen options once into a typed ``JobSettings``; ``context`` holds
the facts stages share (ledger, client, pauses, slots, credentials); each stage module takes the
context, the job and its settings and returns an ``outcome``; ``apply`` is the one place that
writes an outcome to the ledger; ``classify`` is the one error -> outcome table. No stage calls
another: ``pipeline.Pipeline.step`` runs the next stage when an outcome says it may run at once.
"""
