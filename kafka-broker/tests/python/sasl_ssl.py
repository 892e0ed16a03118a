"""kafka-python over SASL_SSL against the bundled broker.

Usage: sasl_ssl.py BOOTSTRAP CAFILE MECHANISM USER PASSWORD TOPIC

Produces 200 messages and reads them back with the given credentials, then
tries once more with a wrong password. Reports one JSON object on stdout:
{"produced": N, "consumed": N, "distinct": N, "wrong_password_error": "...",
"wrong_password_logs": [...]}.
"""

import json
import logging
import sys

from kafka import KafkaConsumer, KafkaProducer

BOOTSTRAP, CAFILE, MECHANISM, USER, PASSWORD, TOPIC = sys.argv[1:7]
COUNT = 200


def security(password):
    return dict(
        bootstrap_servers=BOOTSTRAP,
        security_protocol="SASL_SSL",
        ssl_cafile=CAFILE,
        sasl_mechanism=MECHANISM,
        sasl_plain_username=USER,
        sasl_plain_password=password,
    )


producer = KafkaProducer(acks="all", **security(PASSWORD))
values = [f"py-secure-{i:04}" for i in range(COUNT)]
for future in [producer.send(TOPIC, v.encode()) for v in values]:
    future.get(timeout=30)
producer.flush()
producer.close()

consumer = KafkaConsumer(
    TOPIC,
    auto_offset_reset="earliest",
    consumer_timeout_ms=10_000,
    **security(PASSWORD),
)
seen = []
for message in consumer:
    seen.append(message.value.decode())
    if len(seen) >= COUNT:
        break
consumer.close()

class Collect(logging.Handler):
    """kafka-python logs a refused login and retries until its timeout."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


collected = Collect()
logging.getLogger("kafka").addHandler(collected)
wrong = None
try:
    bad = KafkaProducer(max_block_ms=5_000, **security(PASSWORD + "-wrong"))
    bad.send(TOPIC, b"never").get(timeout=5)
    bad.close()
except Exception as e:  # the type differs between kafka-python versions
    wrong = f"{type(e).__name__}: {e}"

print(
    json.dumps(
        {
            "produced": COUNT,
            "consumed": len(seen),
            "distinct": len(set(seen) & set(values)),
            "wrong_password_error": wrong,
            "wrong_password_logs": [m for m in collected.messages if "uthenticat" in m][:3],
        }
    )
)
