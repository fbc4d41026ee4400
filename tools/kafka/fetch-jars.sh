#!/usr/bin/env bash
# Gathers the jars of the Apache Kafka broker used by the tests into tools/kafka/jars/.
# Idempotent: does nothing when the jar of the pinned version (kafka.version in pom.xml) is there.
# Needs java and mvn on PATH and Maven Central (or the mirror of ~/.m2/settings.xml); ~/.m2 caches.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
pom="$here/pom.xml"
jars="$here/jars"

version="$(sed -n 's|.*<kafka.version>\(.*\)</kafka.version>.*|\1|p' "$pom" | head -n 1)"
if [[ -z "$version" ]]; then
    echo "fetch-jars: cannot read kafka.version from $pom" >&2
    exit 2
fi
marker="$jars/kafka_2.13-$version.jar"

if [[ -f "$marker" ]]; then
    echo "fetch-jars: Kafka $version jars already in $jars (nothing to do)"
    exit 0
fi

for tool in java mvn; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "fetch-jars: '$tool' not found on PATH; install a JDK (17+) and Maven 3.8+" >&2
        exit 3
    fi
done

# One fetch at a time (parallel test sessions); re-check once the lock (on the pom) is ours.
exec 9<"$pom"
if command -v flock >/dev/null 2>&1; then
    flock 9
fi
if [[ -f "$marker" ]]; then
    echo "fetch-jars: Kafka $version jars already in $jars (fetched by another run)"
    exit 0
fi

# Fetch into a fresh folder under target/ (git-ignored), then swap: never mix the jars of two
# versions on one classpath.
mkdir -p "$here/target"
staging="$(mktemp -d "$here/target/jars.XXXXXX")"
trap 'rm -rf "$staging" "$staging.log"' EXIT
start=$SECONDS
if ! mvn -B -q -Dstyle.color=never -f "$pom" dependency:copy-dependencies \
        -DoutputDirectory="$staging" >"$staging.log" 2>&1; then
    cat "$staging.log" >&2
    echo "fetch-jars: mvn failed to fetch Kafka $version (see above)" >&2
    exit 4
fi
if [[ ! -f "$staging/kafka_2.13-$version.jar" ]]; then
    echo "fetch-jars: mvn ran but kafka_2.13-$version.jar is missing" >&2
    exit 4
fi
chmod 755 "$staging"  # mktemp -d makes it 0700
rm -rf "$jars"
mv "$staging" "$jars"
count="$(find "$jars" -maxdepth 1 -name '*.jar' | wc -l)"
echo "fetch-jars: fetched Kafka $version ($count jars) into $jars in $((SECONDS - start))s"
