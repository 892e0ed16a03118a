#!/usr/bin/env bash
# Fetches the Java client's classpath from Maven Central and compiles the
# peer program (src/JavaPeer.java) into a cache the tests read:
#   ${KAFKA_SDK_CACHE:-$HOME/.cache/kafka-sdk}/java-peer-VERSION/{libs,classes}
# Prints the directory. Usage: build.sh [KAFKA_CLIENTS_VERSION]
set -euo pipefail
version="${1:-4.1.1}"
here="$(cd "$(dirname "$0")" && pwd)"
cache="${KAFKA_SDK_CACHE:-$HOME/.cache/kafka-sdk}"
out="$cache/java-peer-$version"
if [ ! -f "$out/libs/kafka-clients-$version.jar" ]; then
    rm -rf "$out/libs.partial"
    mvn -q -B -f "$here/pom.xml" dependency:copy-dependencies \
        -Dkafka.version="$version" -DoutputDirectory="$out/libs.partial" >&2
    rm -rf "$out/libs"
    mv "$out/libs.partial" "$out/libs"
fi
# Always recompiled: cheap, and the source may have changed.
rm -rf "$out/classes"
mkdir -p "$out/classes"
javac -nowarn -d "$out/classes" -cp "$out/libs/*" "$here"/src/*.java >&2
echo "$out"
