"""The ingestion engine: a bounded queue drained in batches by a background task."""
