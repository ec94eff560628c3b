#!/bin/sh
# Builds the whole root filesystem of a kubevirt-imds image: one dynamically
# linked executable (a `deno compile` binary) and exactly the shared libraries
# it loads, copied from the build stage to the same paths. The dynamic loader
# finds them in its built-in search path (/lib/<arch>-linux-gnu), so neither
# ld.so.cache nor a shell, package manager or other tool is in the image.
# libc.so.6 is always among them, which the sidecar's FFI also opens by name.
#
# usage: rootfs.sh EXECUTABLE ROOT   (installs EXECUTABLE as ROOT/usr/local/bin/<name>)
set -eu

if [ "$#" -ne 2 ]; then
  echo "usage: rootfs.sh EXECUTABLE ROOT" >&2
  exit 2
fi
exe=$1
root=$2

if [ ! -f "$exe" ] || [ ! -x "$exe" ]; then
  echo "rootfs.sh: $exe is not an executable file" >&2
  exit 1
fi

deps=$(ldd "$exe" 2>&1) || {
  echo "rootfs.sh: ldd cannot read $exe: $deps" >&2
  exit 1
}
if printf '%s\n' "$deps" | grep -q 'not found'; then
  echo "rootfs.sh: $exe needs libraries this stage does not have:" >&2
  printf '%s\n' "$deps" | grep 'not found' >&2
  exit 1
fi
libs=$(printf '%s\n' "$deps" | grep -o '/[^ ]*' || true)
if ! printf '%s\n' "$libs" | grep -q '/libc\.so\.6$'; then
  echo "rootfs.sh: $exe does not link glibc (libc.so.6); the images need it" >&2
  exit 1
fi

mkdir -p "$root/usr/local/bin"
cp "$exe" "$root/usr/local/bin/"
for lib in $libs; do
  # -L: copy the file a symlink (e.g. /lib64/ld-linux-x86-64.so.2) points to.
  cp -L --parents "$lib" "$root"
done
echo "rootfs.sh: $root holds $(basename "$exe") and $(printf '%s\n' "$libs" | wc -l) libraries"
