"""The Kafka runtime (faust-streaming, aiokafka): the worker, its consumer's seeking, the
standby lock, topic creation and the producer behind `accrochage send`."""
