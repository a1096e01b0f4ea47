#!/usr/bin/env bash
# Gather the pinned Kafka broker jars (pom.xml) into a cache, verified against SHA256SUMS.
# Usage: fetch.sh [--repin]   Prints the libs directory on stdout; everything else goes to stderr.
set -euo pipefail
export LC_ALL=C
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VER="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$HERE/pom.xml")"
DIR="${QRTRACE_CACHE:-$HOME/.cache/qrtrace}/kafka-$VER"
LIBS="$DIR/libs" SUMS="$DIR/SHA256SUMS" PIN="$HERE/SHA256SUMS"
die() { echo "fetch.sh: $*" >&2; exit 1; }
# A dir matches a list when every listed jar has its hash and the dir holds nothing else.
matches() { (cd "$1" && sha256sum --quiet --strict -c "$2" >/dev/null 2>&1) &&
  [ "$(find "$1" -mindepth 1 | wc -l)" -eq "$(wc -l <"$2")" ]; }

mkdir -p "$DIR"
exec 9>"$DIR/.lock"
flock -w 900 9 || die "timed out waiting for another fetch of $DIR"
[ "${1:-}" = --repin ] || [ -f "$PIN" ] || die "no $PIN: run 'fetch.sh --repin' once to pin the jars"
if [ "${1:-}" != --repin ] && [ -d "$LIBS" ] && [ -f "$SUMS" ] && cmp -s "$SUMS" "$PIN"; then
  matches "$LIBS" "$SUMS" || die "checksum mismatch in $LIBS (corrupt or altered; delete $DIR to refetch)"
  echo "$LIBS"; exit 0
fi
echo "fetch.sh: gathering Kafka $VER jars with mvn into $LIBS" >&2
WORK="$(mktemp -d "$DIR/tmp.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
cp "$HERE/pom.xml" "$WORK/pom.xml"
mvn -q -B -C -f "$WORK/pom.xml" dependency:copy-dependencies -DoutputDirectory="$WORK/libs" >&2 ||
  die "mvn could not gather the jars (see its output above)"
[ "${1:-}" = --repin ] && (cd "$WORK/libs" && LC_ALL=C sha256sum -- *.jar) >"$PIN"
matches "$WORK/libs" "$PIN" || die "gathered jars do not match $PIN (wrong download, or pom.xml changed: --repin)"
rm -rf "$LIBS" && mv "$WORK/libs" "$LIBS" && cp "$PIN" "$SUMS"
echo "$LIBS"
