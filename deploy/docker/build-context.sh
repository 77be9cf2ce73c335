#!/usr/bin/env bash
# Assembles the Docker build context of deploy/docker/Dockerfile in DIR
# (default bin/image in the repository): the static binary from
# scripts/build (VERSION, GOARCH as there), the build machine's CA
# certificates, the default configuration and an empty data/ for /data.
#
#   VERSION=v1.2.3 deploy/docker/build-context.sh bin/image
#   docker build -t hector:v1.2.3 bin/image
#
# A relative DIR is taken from the directory the script is run in.
set -euo pipefail

dir=${1:-}
if [ -n "$dir" ] && [ "${dir#/}" = "$dir" ]; then
  dir="$PWD/$dir"
fi
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
dir=${dir:-$repo/bin/image}
certs=${CA_CERTIFICATES:-/etc/ssl/certs/ca-certificates.crt}

[ -r "$certs" ] || { echo "build-context.sh: no CA certificates at $certs (apt-get install ca-certificates, or set CA_CERTIFICATES)" >&2; exit 1; }
mkdir -p "$dir/data"
OUT="$dir/hector" GOOS=linux "$repo/scripts/build"
cp "$certs" "$dir/ca-certificates.crt"
cp "$here/Dockerfile" "$here/hector.yaml" "$dir/"
chmod 0644 "$dir/ca-certificates.crt" "$dir/Dockerfile" "$dir/hector.yaml"
chmod 0755 "$dir/data"
echo "build-context.sh: $dir"
