"""kafka-python's KafkaAdminClient against the bundled broker.

Usage: admin.py BOOTSTRAP TOPIC

Creates TOPIC (3 partitions), writes 10 records to each, then drives the
admin calls kafka-python 3.0 offers for the APIs the broker serves: records
deletion, topic configs (IncrementalAlterConfigs, legacy AlterConfigs,
reset, DescribeConfigs), the cluster description and consumer-group offsets.
Every result is reported as one JSON object on stdout; the Rust test
checks it and the broker's state.
"""

import json
import sys
import time

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient, OffsetSpec
from kafka.structs import OffsetAndMetadata

BOOTSTRAP, TOPIC = sys.argv[1], sys.argv[2]
DEADLINE_S = 30
report = {}

admin = KafkaAdminClient(bootstrap_servers=BOOTSTRAP, client_id="py-admin")

created = admin.create_topics({TOPIC: {"num_partitions": 3, "replication_factor": 1}})
report["create"] = [t["error_code"] for t in created["topics"]]
again = admin.create_topics({TOPIC: {"num_partitions": 3}}, raise_errors=False)
report["create_again"] = [t["error_code"] for t in again["topics"]]

producer = KafkaProducer(bootstrap_servers=BOOTSTRAP)
for partition in range(3):
    for i in range(10):
        producer.send(TOPIC, value=b"%d-%d" % (partition, i), partition=partition)
producer.flush()
producer.close()

tp = [TopicPartition(TOPIC, p) for p in range(3)]

# Records: partition 0 from offset 4, partition 1 entirely (-1 = high watermark).
deleted = admin.delete_records({tp[0]: 4, tp[1]: -1})
report["delete_records"] = {str(t.partition): d["low_watermark"] for t, d in sorted(deleted.items())}
try:
    admin.delete_records({tp[2]: 99})
    report["delete_past_end"] = "accepted"
except Exception as e:  # the broker's refusal, as kafka-python raises it
    report["delete_past_end"] = type(e).__name__
earliest = admin.list_partition_offsets({t: OffsetSpec.EARLIEST for t in tp})
report["earliest"] = [earliest[t].offset for t in tp]

# A consumer asked to start at 0 on partition 0 is told OFFSET_OUT_OF_RANGE
# and resets to the new start.
consumer = KafkaConsumer(bootstrap_servers=BOOTSTRAP, auto_offset_reset="earliest",
                         enable_auto_commit=False, consumer_timeout_ms=1000)
consumer.assign([tp[0]])
consumer.seek(tp[0], 0)
offsets = []
deadline = time.time() + DEADLINE_S
while len(offsets) < 6 and time.time() < deadline:
    for records in consumer.poll(timeout_ms=200).values():
        offsets.extend(r.offset for r in records)
consumer.close()
report["read_after_delete"] = offsets


def topic_configs():
    described = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, TOPIC)])
    return {k: [v["value"], v["config_source"]] for k, v in sorted(described["topic"][TOPIC].items())}


resource = lambda configs: ConfigResource(ConfigResourceType.TOPIC, TOPIC, configs=configs)
report["alter_incremental"] = admin.alter_configs([resource({"retention.ms": "3600000"})])["topic"][TOPIC]
report["after_incremental"] = topic_configs()
report["alter_legacy"] = admin.alter_configs([resource({"retention.bytes": "123456"})], incremental=False)["topic"][TOPIC]
report["after_legacy"] = topic_configs()
report["reset"] = admin.reset_configs([resource(["retention.ms"])])["topic"][TOPIC]
report["after_reset"] = topic_configs()
report["alter_invalid"] = admin.alter_configs([resource({"retention.ms": "soon"})])["topic"][TOPIC]
report["alter_validate_only"] = admin.alter_configs([resource({"retention.bytes": "1"})], validate_only=True)["topic"][TOPIC]
report["after_refusals"] = topic_configs()

cluster = admin.describe_cluster()
report["cluster"] = {
    "cluster_id": cluster["cluster_id"],
    "controller_id": cluster["controller_id"],
    "brokers": sorted([b["broker_id"], b["host"], b["port"]] for b in cluster["brokers"]),
}

# Group offsets: an offsets-only (Empty) group.
altered = admin.alter_group_offsets("py-admin-group", {
    tp[0]: OffsetAndMetadata(5, "", -1),
    tp[2]: OffsetAndMetadata(7, "", -1),
})
report["alter_group_offsets"] = sorted(e.__name__ for e in altered.values())
listed = admin.list_group_offsets({"py-admin-group": None})["py-admin-group"]
report["group_offsets"] = {str(t.partition): o.offset for t, o in sorted(listed.items())}
removed = admin.delete_group_offsets("py-admin-group", [tp[0]])
report["delete_group_offsets"] = {str(t.partition): e.__name__ for t, e in removed.items()}
listed = admin.list_group_offsets({"py-admin-group": None})["py-admin-group"]
report["group_offsets_after_delete"] = {str(t.partition): o.offset for t, o in sorted(listed.items())}

# A live consumer group keeps the offsets of the topic it subscribes to.
member = KafkaConsumer(TOPIC, bootstrap_servers=BOOTSTRAP, group_id="py-live-group",
                       auto_offset_reset="earliest", enable_auto_commit=False)
deadline = time.time() + DEADLINE_S
while not member.assignment() and time.time() < deadline:
    member.poll(timeout_ms=200)
member.commit({tp[2]: OffsetAndMetadata(9, "", -1)})
try:
    report["delete_subscribed"] = {str(t.partition): e.__name__ for t, e in
                                   admin.delete_group_offsets("py-live-group", [tp[2]]).items()}
except Exception as e:
    report["delete_subscribed"] = type(e).__name__
report["live_delete_groups"] = dict(admin.delete_groups(["py-live-group"]))
member.close()

report["delete_groups"] = dict(admin.delete_groups(["py-admin-group", "py-never-group"]))
try:
    admin.delete_group_offsets("py-admin-group", [tp[2]])
    report["delete_offsets_of_deleted_group"] = "accepted"
except Exception as e:
    report["delete_offsets_of_deleted_group"] = type(e).__name__
admin.close()
print(json.dumps(report, sort_keys=True))
