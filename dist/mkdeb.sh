#!/usr/bin/env bash
# mkdeb.sh — `make deb`: builds BUILD/provium_<version>_<arch>.deb with
# dpkg-buildpackage from a copy of the source tree (debian/, docs/install.md), then
# runs lintian on it. A second run on an unchanged tree does nothing: the .deb's
# BUILD/provium_<version>_<arch>.deb.tree holds the hash of the tree it was built
# from (every file git tracks or would add, by content).
#
#   dist/mkdeb.sh [BUILD]      BUILD defaults to build (relative to the checkout)
#   PROVIUM_DEB_JOBS=N         make -j inside the package build (default: nproc)
#
# The package build log is BUILD/deb/build.log, lintian's report BUILD/deb/lintian.txt.
# Exit 1 when the build fails or lintian reports an error or a warning (what it
# reports is printed; debian/provium.lintian-overrides says what is accepted and why).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
build=$(realpath -m "${1:-build}")
die() { printf 'deb: error: %s\n' "$*" >&2; exit 1; }

for t in dpkg-buildpackage dpkg-parsechangelog dh lintian; do
  command -v $t > /dev/null || die "$t is missing (apt-get install dpkg-dev debhelper lintian, or make deps)"
done
version=$(sed -n 's/^#define PROVIUM_VERSION "\(.*\)"$/\1/p' runner/commands.h)
clver=$(dpkg-parsechangelog -l debian/changelog -S Version)
[ "$clver" = "$version" ] || die "debian/changelog is at $clver but runner/commands.h says $version: add a changelog entry for $version"
arch=$(dpkg-architecture -qDEB_HOST_ARCH)
deb=$build/provium_${version}_$arch.deb

# The files of the tree, NUL-separated: git's view (tracked and untracked, not
# ignored, still present) in a checkout; outside git everything but build trees.
tree_files() {
  if git rev-parse --is-inside-work-tree > /dev/null 2>&1; then
    git ls-files -z -c -o --exclude-standard | while IFS= read -r -d '' f; do
      [ -f "$f" ] && printf '%s\0' "$f"
    done
  else
    find . -path ./build -prune -o -path ./build-asan -prune -o -path ./.git -prune -o \
      -type f -printf '%P\0'
  fi | sort -z
}
hash=$(tree_files | xargs -0 sha256sum | sha256sum | cut -c1-16)
if [ -f "$deb" ] && [ "$(cat "$deb.tree" 2> /dev/null)" = "$hash" ]; then
  echo "deb: $deb is up to date (tree $hash)"
  exit 0
fi

work=$build/deb
src=$work/provium-$version
rm -rf "$work"
mkdir -p "$src"
tree_files | tar -c --null -T - -f - | tar -x -C "$src" -f -
echo "deb: building provium $version ($arch) in $src (log: $work/build.log)"
t0=$SECONDS
# From inside `make test` or `make deb`: no jobserver of the outer make in this one,
# and none of its variables (make exports command-line ones: BUILD=... would make the
# package build use the checkout's build dir) nor the caller's compiler flags (the
# package gets dpkg-buildflags').
if ! (cd "$src" && env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL -u BUILD -u PREFIX -u DESTDIR \
        -u CFLAGS -u CPPFLAGS -u LDFLAGS -u CC \
        DEB_BUILD_OPTIONS="parallel=${PROVIUM_DEB_JOBS:-$(nproc)} ${DEB_BUILD_OPTIONS:-}" \
        dpkg-buildpackage -b -us -uc) > "$work/build.log" 2>&1; then
  tail -40 "$work/build.log" >&2
  die "dpkg-buildpackage failed; full log: $work/build.log"
fi
built=$work/provium_${version}_$arch.deb
[ -f "$built" ] || die "dpkg-buildpackage made no $built (log: $work/build.log)"
echo "deb: built in $((SECONDS - t0)) s; lintian..."

# Errors and warnings fail; info and pedantic tags are shown for the record.
lintian --info --display-info --pedantic --tag-display-limit 0 "$built" > "$work/lintian.txt" 2>&1 || true
if grep -qE '^[EW]: ' "$work/lintian.txt"; then
  cat "$work/lintian.txt" >&2
  die "lintian reports errors or warnings (above; $work/lintian.txt)"
fi
sed 's/^/deb: lintian: /' "$work/lintian.txt"
cp "$built" "$deb.tmp"
mv "$deb.tmp" "$deb"
echo "$hash" > "$deb.tree"
echo "deb: $deb ($(stat -c %s "$deb") bytes, tree $hash)"
