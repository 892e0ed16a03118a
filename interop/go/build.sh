#!/usr/bin/env bash
# Builds the franz-go peer (cmd/franzpeer) and the kfake broker
# (cmd/kfakebroker) into a cache the tests read:
#   ${KAFKA_SDK_CACHE:-$HOME/.cache/kafka-sdk}/go-peer/{franzpeer,kfakebroker}
# Prints the directory; everything else goes to stderr. Go fetches the
# modules pinned in go.sum through its module proxy.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cache="${KAFKA_SDK_CACHE:-$HOME/.cache/kafka-sdk}"
out="$cache/go-peer"
mkdir -p "$out"
# Always rebuilt: go's build cache makes it cheap, and the source may have changed.
cd "$here"
for cmd in franzpeer kfakebroker; do
    go build -trimpath -o "$out/$cmd" "./cmd/$cmd" >&2
done
echo "$out"
