"""kafka-python consumer groups against the bundled broker.

Usage: consumer_group.py BOOTSTRAP TOPIC GROUP

Three phases, reported as one JSON object on stdout:
1. three consumers join one group over the topic; once the group is stable
   messages are produced, consumed and committed after every poll;
2. the group is closed and started again: only messages produced since are
   read (committed offsets are resumed);
3. one member leaves: the other two take over its partitions and read the
   messages produced afterwards.
"""

import json
import sys
import threading
import time

from kafka import KafkaConsumer, KafkaProducer

BOOTSTRAP, TOPIC, GROUP = sys.argv[1], sys.argv[2], sys.argv[3]
DEADLINE_S = 60


class Member(threading.Thread):
    def __init__(self, name, received, lock):
        super().__init__(daemon=True)
        self.name_ = name
        self.received = received
        self.lock = lock
        self.stop = threading.Event()
        self.assignment = set()
        self.error = None
        self.consumer = KafkaConsumer(
            TOPIC,
            bootstrap_servers=BOOTSTRAP,
            group_id=GROUP,
            client_id=name,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            session_timeout_ms=6000,
            heartbeat_interval_ms=300,
        )

    def run(self):
        try:
            while not self.stop.is_set():
                batches = self.consumer.poll(timeout_ms=100)
                with self.lock:
                    self.assignment = {tp.partition for tp in self.consumer.assignment()}
                    for records in batches.values():
                        for record in records:
                            self.received.append((self.name_, record.value.decode()))
                if batches:
                    self.consumer.commit()
        except Exception as e:  # reported to the test, which fails on it
            self.error = repr(e)
        finally:
            self.consumer.close(autocommit=False)


def produce(prefix, count):
    producer = KafkaProducer(bootstrap_servers=BOOTSTRAP)
    for i in range(count):
        producer.send(TOPIC, key=str(i).encode(), value=f"{prefix}-{i}".encode())
    producer.flush()
    producer.close()
    return [f"{prefix}-{i}" for i in range(count)]


def wait_for(condition, what, describe=lambda: ""):
    deadline = time.time() + DEADLINE_S
    while time.time() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise SystemExit(f"timed out waiting for {what} {describe()}")


def stable(members, partitions, lock):
    """Every member has partitions, together all of them, unchanged for 1 s."""
    def snapshot():
        with lock:
            return [frozenset(m.assignment) for m in members]

    def covered():
        assignments = snapshot()
        union = set().union(*assignments)
        return all(assignments) and union == set(range(partitions)) and sum(map(len, assignments)) == partitions

    describe = lambda: f"assignments={[sorted(a) for a in snapshot()]} errors={[m.error for m in members]}"
    wait_for(covered, "a stable assignment", describe)
    first = snapshot()
    time.sleep(1.0)
    wait_for(covered, "a stable assignment", describe)
    return snapshot() == first or stable(members, partitions, lock)


def run_phase(members, received, lock, expected):
    wait_for(lambda: len({v for _, v in received} & set(expected)) == len(expected), f"{len(expected)} messages")
    time.sleep(0.5)  # let duplicates, if any, arrive
    with lock:
        values = [v for _, v in received if v in set(expected)]
        others = [v for _, v in received if v not in set(expected)]
    return {"expected": len(expected), "received": len(values), "distinct": len(set(values)), "unexpected": len(others)}


def main():
    partitions = 6
    report = {}
    lock = threading.Lock()

    received = []
    members = [Member(f"member-{i}", received, lock) for i in range(3)]
    for m in members:
        m.start()
    stable(members, partitions, lock)
    report["first_assignment"] = sorted(len(m.assignment) for m in members)
    report["first"] = run_phase(members, received, lock, produce("first", 600))
    for m in members:
        m.stop.set()
    for m in members:
        m.join(timeout=DEADLINE_S)
    report["errors"] = [m.error for m in members if m.error]

    later = produce("second", 300)
    received = []
    members = [Member(f"again-{i}", received, lock) for i in range(3)]
    for m in members:
        m.start()
    stable(members, partitions, lock)
    report["second"] = run_phase(members, received, lock, later)

    leaving = members.pop()
    leaving.stop.set()
    leaving.join(timeout=DEADLINE_S)
    stable(members, partitions, lock)
    report["after_leave_assignment"] = sorted(len(m.assignment) for m in members)
    received.clear()
    report["third"] = run_phase(members, received, lock, produce("third", 300))
    report["consumers_in_third"] = len({name for name, _ in received})
    for m in members:
        m.stop.set()
    for m in members:
        m.join(timeout=DEADLINE_S)
    report["errors"] += [m.error for m in members + [leaving] if m.error]
    print(json.dumps(report))


main()
