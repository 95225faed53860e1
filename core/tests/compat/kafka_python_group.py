"""kafka-python (Debian's python3-kafka) as a group consumer: joins GROUP on TOPIC, reads up to
WANT records (stopping after IDLE_MS without one), commits synchronously and closes (which
leaves the group).

usage: kafka_python_group.py BOOTSTRAP TOPIC GROUP WANT IDLE_MS

Prints `kafka-python group consumed=N committed=P:O,...` (committed offsets per partition after
the commit) and exits 0; exits 1 with `FAIL: ...` on an error.
"""
import sys

from kafka import KafkaConsumer, TopicPartition


def main():
    bootstrap, topic, group, want, idle_ms = sys.argv[1:6]
    want, idle_ms = int(want), int(idle_ms)
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group,
        client_id="kafka-python-group",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        session_timeout_ms=6000,
        heartbeat_interval_ms=1000,
        consumer_timeout_ms=idle_ms,
    )
    consumed = 0
    for _ in consumer:
        consumed += 1
        if consumed >= want:
            break
    consumer.commit()
    partitions = sorted(consumer.partitions_for_topic(topic) or [])
    committed = []
    for p in partitions:
        offset = consumer.committed(TopicPartition(topic, p))
        committed.append("%d:%s" % (p, -1 if offset is None else offset))
    consumer.close()
    print("kafka-python group consumed=%d committed=%s" % (consumed, ",".join(committed)))


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # noqa: BLE001 - report any client error to the test
        print("FAIL: %r" % (e,))
        sys.exit(1)
