#!/usr/bin/python3
"""kafka-python (Debian's python3-kafka) against a broker: produce N keyed messages with
acks=all, read them back from the beginning without a consumer group, list the topics.

usage: kafka_python_client.py BOOTSTRAP TOPIC N [API_VERSION like 2.4.0]
COMPAT_COMPRESSION=gzip|snappy|lz4 sets the producer's compression_type.
Prints `kafka-python VERSION api=... produced=N consumed=N topics_listed=yes|no|skipped` (with
`compression=C ` before `produced` when set) and exits 0 when every message came back with its
key, value and contiguous offsets; else 1.
"""
import logging
import os
import sys
import time

import kafka
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

if os.environ.get("COMPAT_DEBUG"):
    logging.basicConfig(level=logging.DEBUG, stream=sys.stderr)


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


def main():
    bootstrap, topic, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    extra = {}
    if len(sys.argv) > 4:
        extra["api_version"] = tuple(int(x) for x in sys.argv[4].split("."))

    compression = os.environ.get("COMPAT_COMPRESSION") or None
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5,
                             request_timeout_ms=10000, max_block_ms=10000,
                             compression_type=compression, **extra)
    api = producer.config["api_version"]
    futures = [producer.send(topic, key=b"k%d" % i, value=b"v%d" % i) for i in range(n)]
    producer.flush(timeout=10)
    metas = [f.get(timeout=10) for f in futures]
    producer.close(timeout=5)
    if sorted(m.offset for m in metas) != list(range(n)) or any(m.partition != 0 for m in metas):
        fail("produce offsets %r" % [(m.partition, m.offset) for m in metas])

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                             consumer_timeout_ms=5000, request_timeout_ms=10000,
                             fetch_max_wait_ms=200, **extra)
    tp = TopicPartition(topic, 0)
    consumer.assign([tp])
    consumer.seek_to_beginning(tp)
    got = []
    deadline = time.time() + 15
    while len(got) < n and time.time() < deadline:
        for records in consumer.poll(timeout_ms=500).values():
            got.extend(records)
    consumer.close()
    want = [(i, b"k%d" % i, b"v%d" % i) for i in range(n)]
    have = [(r.offset, r.key, r.value) for r in got]
    if have != want:
        fail("consumed %d of %d; first differences %r" % (
            len(have), n, [(h, w) for h, w in zip(have, want) if h != w][:3] or have[-3:]))

    listed = "skipped"
    try:
        from kafka import KafkaAdminClient
    except ImportError:
        KafkaAdminClient = None
    if KafkaAdminClient is not None:
        admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10000, **extra)
        topics = admin.list_topics()
        admin.close()
        if topic not in topics:
            fail("list_topics %r lacks %s" % (topics, topic))
        listed = "yes"

    print("kafka-python %s api=%s %sproduced=%d consumed=%d topics_listed=%s" % (
        kafka.__version__, ".".join(map(str, api)),
        "compression=%s " % compression if compression else "", len(metas), len(got), listed))


if __name__ == "__main__":
    main()
