"""One kafka-python member of a consumer group shared with this SDK's consumer.

Usage: group_member.py BOOTSTRAP TOPIC GROUP

Prints "assigned N" to stderr whenever its assignment changes, reads until
it has seen records and then nothing new for 2 seconds (or 30 seconds pass),
commits, leaves, and prints the values it read as JSON on stdout.
"""

import json
import sys
import time

from kafka import KafkaConsumer

bootstrap, topic, group = sys.argv[1:4]
consumer = KafkaConsumer(
    topic,
    bootstrap_servers=bootstrap,
    group_id=group,
    auto_offset_reset="earliest",
    enable_auto_commit=False,
    session_timeout_ms=6000,
    heartbeat_interval_ms=200,
    partition_assignment_strategy=[__import__("kafka").coordinator.assignors.range.RangePartitionAssignor],
)
seen = []
last_new = None
started = time.time()
assigned = None
while time.time() - started < 30:
    batches = consumer.poll(timeout_ms=100)
    now_assigned = len(consumer.assignment())
    if now_assigned != assigned:
        assigned = now_assigned
        print(f"assigned {assigned}", file=sys.stderr, flush=True)
    got = [r.value.decode() for records in batches.values() for r in records]
    if got:
        seen.extend(got)
        last_new = time.time()
        consumer.commit()
    elif last_new is not None and time.time() - last_new > 2:
        break
consumer.close()
print(json.dumps(seen))
