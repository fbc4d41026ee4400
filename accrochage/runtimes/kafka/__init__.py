"""The Kafka runtime (faust-streaming, aiokafka): the worker, its consumer's seeking, topic
creation and the producer behind `accrochage send` (its standby lock: `runtimes/service_lock.py`,
which `accrochage run` holds too)."""
