"""Ingest engines: who runs the model for `actstore ingest --engine ...`.

`local` (`actstore.ingest.pipeline.run_job` per job) encodes in the calling process; `ray`
(`ray_engine`, needs the `actstore[ray]` extra) encodes on Ray Data model actors. Every engine
shares the pipeline's planning, resume filtering and key-guarded write (one commit per job), so
the store looks the same whichever engine filled it.
"""
