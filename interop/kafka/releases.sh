#!/usr/bin/env bash
# Regenerates kafka-broker/src/releases.rs from the kafka-clients jars of the
# releases `--kafka-version` imitates (fetched from Maven Central into a
# temporary directory).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
args=()
for spec in 2.8=2.8.2=zkBroker 3.5=3.5.2=zkBroker 3.9=3.9.1=broker 4.0=4.0.1=broker; do
    IFS== read -r name version listener <<<"$spec"
    mvn -q -B dependency:copy -Dartifact="org.apache.kafka:kafka-clients:$version" \
        -DoutputDirectory="$tmp" >&2
    args+=("$name=$listener=$tmp/kafka-clients-$version.jar")
done
python3 "$here/release_versions.py" "${args[@]}" > "$here/../../kafka-broker/src/releases.rs"
echo "wrote kafka-broker/src/releases.rs" >&2
