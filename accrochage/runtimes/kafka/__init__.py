"""The Kafka runtime (faust-streaming, aiokafka): the worker, its consumer's seeking, topic
creation and the producer behind `accrochage send` (its standby wait: the state's
`StoreLocation.service_guard`, which `accrochage run` holds too)."""
