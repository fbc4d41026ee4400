"""The runtimes, composed at the top from the parts `app.py` builds: the embedded service
(`embedded.py`) and the Kafka worker (`kafka.py`)."""
