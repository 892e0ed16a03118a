#!/usr/bin/env bash
# Brings one Apache Kafka release's broker classpath from Maven Central into
# the cache the tests read (kafka-testcontainers' Mode::ApacheKafka):
#   ${KAFKA_SDK_CACHE:-$HOME/.cache/kafka-sdk}/kafka-VERSION/libs/*.jar
# Reuses ~/.m2; prints the directory. Usage: fetch.sh [VERSION]
set -euo pipefail
version="${1:-4.1.1}"
cache="${KAFKA_SDK_CACHE:-$HOME/.cache/kafka-sdk}"
libs="$cache/kafka-$version/libs"
if [ -f "$libs/kafka_2.13-$version.jar" ]; then
    echo "$libs"
    exit 0
fi
if ! command -v mvn >/dev/null 2>&1; then
    echo "error: mvn (Maven) is needed to fetch Apache Kafka $version" >&2
    exit 1
fi
tmp="$libs.partial"
rm -rf "$tmp"
mvn -q -B -f "$(dirname "$0")/pom.xml" dependency:copy-dependencies \
    -Dkafka.version="$version" -DoutputDirectory="$tmp" >&2
mv "$tmp" "$libs"
echo "$libs"
