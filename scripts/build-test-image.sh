#!/usr/bin/env bash
# Builds otto-test/busybox from Debian's busybox-static: no registry is reachable from these machines.
set -euo pipefail
image=${1:-otto-test/busybox}
if docker image inspect "$image" >/dev/null 2>&1; then exit 0; fi
busybox=$(command -v busybox || true)
if [ -z "$busybox" ]; then
  echo "build-test-image: no busybox here; install it (Debian: apt-get install busybox-static)" >&2
  exit 1
fi
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
mkdir -p "$dir/bin" "$dir/tmp" "$dir/etc" "$dir/www"
cp "$busybox" "$dir/bin/busybox"
for applet in $("$dir/bin/busybox" --list); do
  [ "$applet" = busybox ] || ln -sf busybox "$dir/bin/$applet"
done
echo 'root:x:0:0:root:/:/bin/sh' > "$dir/etc/passwd"
echo 'otto test page' > "$dir/www/index.html"
tar -C "$dir" -c . | docker import -c 'CMD ["/bin/sh"]' - "$image" >/dev/null
echo "built $image"
