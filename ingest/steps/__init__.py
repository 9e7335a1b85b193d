"""The ingest steps, one job per module; `actstore.ingest.pipeline` runs them in order.

    jobs        the shared types (request, plan, job, pending work, summary) and the phase hook
    inputs      check the request, open the catalogue and the source       (nothing loaded yet)
    planning    points, jobs, and what each job still has to do (resume)  (the store is read)
    batching    length-bucketed batches under the memory budget, and the up-front memory check
    encoding    one job's forwards: pooled vectors per point, NaN/inf refused
    rows        pooled vectors -> Arrow rows (per vector width) and sentence-text rows
    writing     the job's commits (texts, then one per width), provenance and finalize

Both engines (`actstore.ingest.engines`) build on these modules alone, and the pipeline on the
engines, so nothing here imports an engine or the pipeline (tests/test_layers.py checks that the
package has no import cycle). This `__init__` imports nothing, so importing one step stays cheap.
"""
