"""The Kafka runtime: a faust worker over the same core as the embedded service."""
