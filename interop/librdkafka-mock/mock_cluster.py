#!/usr/bin/env python3
"""Starts librdkafka's mock cluster (rdkafka_mock.h) on 127.0.0.1 and serves
it until standard input closes.

    mock_cluster.py LIBRDKAFKA_SO [--brokers N] [--topic NAME:PARTITIONS]...

Prints one line, the bootstrap servers, once the brokers listen. The library
is loaded with ctypes, so the same script drives Debian's librdkafka.so.1 and
the copy bundled in the confluent-kafka wheel. Tests start it as a child
process and close its standard input to stop it.
"""
import argparse
import ctypes
import sys

RD_KAFKA_PRODUCER = 0

# Versions the mock advertises but cannot parse, capped to what it reads.
# librdkafka 2.16's mock offers JoinGroup v6 and SyncGroup v4/v5 (flexible
# versions) and then reads their arrays' lengths as int32 instead of compact
# varints, so it closes the connection on a well-formed request; librdkafka's
# own client never sends them (it stops at JoinGroup v5 and SyncGroup v3).
# Its LeaveGroup answers carry no member list, which v3 and later must have
# (librdkafka sends v1).
# (api key, min, max)
MOCK_PARSE_LIMITS = [(11, 0, 5), (14, 0, 3), (13, 0, 2)]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("library")
    parser.add_argument("--brokers", type=int, default=3)
    parser.add_argument("--topic", action="append", default=[])
    args = parser.parse_args()

    lib = ctypes.CDLL(args.library)
    lib.rd_kafka_version_str.restype = ctypes.c_char_p
    lib.rd_kafka_conf_new.restype = ctypes.c_void_p
    lib.rd_kafka_conf_set.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p,
                                      ctypes.c_char_p, ctypes.c_size_t]
    lib.rd_kafka_new.restype = ctypes.c_void_p
    lib.rd_kafka_new.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t]
    lib.rd_kafka_mock_cluster_new.restype = ctypes.c_void_p
    lib.rd_kafka_mock_cluster_new.argtypes = [ctypes.c_void_p, ctypes.c_int]
    lib.rd_kafka_mock_cluster_bootstraps.restype = ctypes.c_char_p
    lib.rd_kafka_mock_cluster_bootstraps.argtypes = [ctypes.c_void_p]
    lib.rd_kafka_mock_topic_create.restype = ctypes.c_int
    lib.rd_kafka_mock_topic_create.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int,
                                               ctypes.c_int]
    lib.rd_kafka_mock_set_apiversion.restype = ctypes.c_int
    lib.rd_kafka_mock_set_apiversion.argtypes = [ctypes.c_void_p, ctypes.c_int16, ctypes.c_int16,
                                                 ctypes.c_int16]
    lib.rd_kafka_mock_cluster_destroy.argtypes = [ctypes.c_void_p]
    lib.rd_kafka_destroy.argtypes = [ctypes.c_void_p]

    errstr = ctypes.create_string_buffer(512)
    conf = lib.rd_kafka_conf_new()
    # The handle only owns the mock cluster's thread; keep it quiet.
    lib.rd_kafka_conf_set(conf, b"log_level", b"3", errstr, len(errstr))
    rk = lib.rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, len(errstr))
    if not rk:
        sys.exit(f"rd_kafka_new: {errstr.value.decode()}")
    cluster = lib.rd_kafka_mock_cluster_new(rk, args.brokers)
    if not cluster:
        sys.exit("rd_kafka_mock_cluster_new failed")
    for api, low, high in MOCK_PARSE_LIMITS:
        lib.rd_kafka_mock_set_apiversion(cluster, api, low, high)
    for spec in args.topic:
        name, _, partitions = spec.partition(":")
        err = lib.rd_kafka_mock_topic_create(cluster, name.encode(), int(partitions or 1),
                                             min(args.brokers, 3))
        if err:
            sys.exit(f"rd_kafka_mock_topic_create {name}: error {err}")
    sys.stderr.write(f"librdkafka {lib.rd_kafka_version_str().decode()} mock cluster\n")
    print(lib.rd_kafka_mock_cluster_bootstraps(cluster).decode(), flush=True)
    sys.stdin.read()
    lib.rd_kafka_mock_cluster_destroy(cluster)
    lib.rd_kafka_destroy(rk)


if __name__ == "__main__":
    main()
