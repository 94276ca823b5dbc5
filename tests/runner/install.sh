#!/usr/bin/env bash
# install.sh — `make install DESTDIR=...` and the installed tree (docs/install.md):
# the files land where docs/install.md says; the installed binary, run from / with
# nothing of the checkout in its environment, finds its agent, rootfs and kernel
# scripts next to itself, passes `provium doctor` and runs the installed examples;
# `provium kernel build` builds a kernel + initramfs with the installed scripts (a
# fake kernel source, seconds instead of minutes); the man page renders with
# `man -l` without warnings; bash completion offers subcommands, flags and values;
# `make uninstall` removes exactly what install put there.
. "$(dirname "$0")/lib.sh"
D=$W/dest
prefix=/usr/local            # the default: no rebuild of build/ for another PREFIX
P=$D$prefix/bin/provium
# make from inside `make test`: no jobserver of the outer make
mk() { env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -C "$root" --no-print-directory "$@"; }
build=${PROVIUM_BUILD:-$root/build}

if mk install DESTDIR="$D" BUILD="$build" > "$W/install.log" 2>&1; then
  ok "make install DESTDIR=... succeeds"
else
  nok "make install DESTDIR=... succeeds" "$(tail -15 "$W/install.log")"; done_testing; exit 0
fi

missing=
for f in bin/provium lib/provium/provium-agent lib/provium/rootfs/init lib/provium/rootfs/bin/busybox \
         lib/provium/rootfs/bin/provium-agent share/provium/kernels/build.sh \
         share/provium/kernels/config share/provium/kernels/init share/provium/kernels/rootfs.sh \
         share/provium/kernels/mkinitramfs.sh share/provium/kernels/check-config.sh \
         share/man/man1/provium.1 share/bash-completion/completions/provium \
         share/doc/provium/README.md share/doc/provium/docs/README.md share/doc/provium/docs/cli.md \
         share/doc/provium/docs/devices/virtio-blk.md share/doc/provium/examples/hello_test.lua; do
  [ -e "$D$prefix/$f" ] || missing="$missing $f"
done
[ -z "$missing" ] && ok "every installed file is in place under PREFIX" || nok "installed files missing:$missing"
[ -x "$D$prefix/lib/provium/provium-agent" ] && ! ldd "$D$prefix/lib/provium/provium-agent" > /dev/null 2>&1 \
  && ok "the installed agent is a static executable" || nok "the installed agent is not a static executable"
[ "$(find "$root/examples" -name '*.lua' | wc -l)" = "$(find "$D$prefix/share/doc/provium/examples" -name '*.lua' | wc -l)" ] \
  && ok "every example is installed" || nok "examples: $(ls "$D$prefix/share/doc/provium/examples")"

# The installed binary, from /, with nothing pointing at the checkout.
inst() { (cd / && env -u PROVIUM_BUILD -u PROVIUM_SOURCE_DIR -u PROVIUM_AGENT -u PROVIUM_ROOTFS \
          -u PROVIUM_KERNEL -u PROVIUM_INITRD PATH=/usr/sbin:/usr/bin:/sbin:/bin "$@"); }
expect_code 0 "installed provium version" inst "$P" version
grep -q '^provium [0-9]' "$W/out" && ok "version prints the version" || nok "version output" "$(cat "$W/out")"
expect_code 0 "installed provium doctor passes" inst "$P" doctor
grep -qF "guest agent: $D$prefix/lib/provium/provium-agent" "$W/out" &&
  grep -qF "sandbox root file system: $D$prefix/lib/provium/rootfs" "$W/out" &&
  ! grep -q '^  FAIL' "$W/out" \
  && ok "doctor finds the installed agent and rootfs next to the binary, nothing FAILs" \
  || nok "doctor of the installed binary" "$(sed -n '/Software/,/Backends/p' "$W/out")"

# The examples, copied somewhere else, run by the installed binary from /.
cp -r "$D$prefix/share/doc/provium/examples" "$W/ex"
expect_code 0 "the installed provium runs the installed examples from /" inst "$P" run -j2 "$W/ex"
grep -qE '^[0-9]+ passed, 0 failed' "$W/out" && ok "examples: $(grep -E '^[0-9]+ passed' "$W/out" | cut -d' ' -f1-6)" \
  || nok "examples summary" "$(tail -5 "$W/out")"

# Without the rootfs the sandbox says where it looked.
cp -a "$D$prefix" "$W/broken"
rm -rf "$W/broken/lib/provium/rootfs"
expect_code 1 "an install without its rootfs fails the test" inst "$W/broken/bin/provium" run --backend sandbox "$W/ex/hello_test.lua"
grep -q "lib/provium/rootfs" "$W/out" && ok "the error names the install's lib/provium/rootfs" \
  || nok "missing-rootfs error" "$(grep -m3 -i rootfs "$W/out")"
rm -rf "$W/broken"

# provium kernel build with the installed scripts, on a fake kernel source whose
# Makefile writes what build.sh copies out (the real build takes minutes).
mkdir -p "$W/ksrc/linux-source-fake"
cat > "$W/ksrc/linux-source-fake/Makefile" <<'MK'
# A stand-in for linux-source-6.1: tinyconfig writes an empty .config, olddefconfig
# keeps what build.sh appended, vmlinux/bzImage write placeholder files.
tinyconfig:
	@mkdir -p $(O) && : > $(O)/.config && echo "  GEN     tinyconfig"
olddefconfig:
	@echo "  GEN     olddefconfig"
vmlinux:
	@echo "  CC      fake.o" && echo fake-vmlinux > $(O)/vmlinux && echo "0 T _start" > $(O)/System.map
bzImage: vmlinux
	@mkdir -p $(O)/arch/x86/boot && echo fake-bzImage > $(O)/arch/x86/boot/bzImage
MK
tar -C "$W/ksrc" -cJf "$W/ksrc.tar.xz" linux-source-fake
kenv() { inst env PROVIUM_CACHE_DIR="$W/kcache" PROVIUM_LINUX_SOURCE="$W/ksrc.tar.xz" "$@"; }
expect_code 0 "installed provium kernel build builds with the installed scripts" kenv "$P" kernel build
expect_code 0 "installed provium kernel path finds what it built" kenv "$P" kernel path
vml=$(awk '$1 == "vmlinux" { print $2 }' "$W/out"); ird=$(awk '$1 == "initramfs" { print $2 }' "$W/out")
[ "$(cat "$vml" 2>/dev/null)" = fake-vmlinux ] && [[ $vml == "$W/kcache/kernel/"* ]] \
  && ok "the kernel came from the fake source into the cache" || nok "kernel path" "$(cat "$W/out")"
expect_code 0 "installed provium kernel hash" kenv "$P" kernel hash
[ "$(cat "$W/out")" = "$(basename "$(dirname "$vml")")" ] && grep -qxE '[0-9a-f]{16}' "$W/out" \
  && ok "kernel hash is the cache key of the kernel it built" || nok "kernel hash '$(cat "$W/out")' for $vml"
if [ -s "$ird" ] && cpio -it < "$ird" 2>/dev/null | grep -qx bin/provium-agent &&
   cmp -s <(cpio -i --to-stdout bin/provium-agent < "$ird" 2>/dev/null) "$D$prefix/lib/provium/provium-agent"; then
  ok "the initramfs packs the installed agent"
else
  nok "the initramfs packs the installed agent" "initramfs: $ird"
fi

# the flags of the first "| flag | meaning |" table of docs/cli.md: `provium run`'s
doc_run_flags() {
  awk '/^\| flag \| meaning/ { t++ } t == 1 && /^\|/ { print } t == 1 && /^$/ { exit }' "$root/docs/cli.md" |
    grep -oE '`-[^`]*`' | grep -oE -- '--[a-z-]+' | sort -u
}

# provium(1)
man_page=$D$prefix/share/man/man1/provium.1
warn=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -E UTF-8 -l -Tutf8 -Z "$man_page" 2>&1 > /dev/null)
[ -z "$warn" ] && ok "man -l renders provium.1 without warnings" || nok "man warnings" "$warn"
text=$(MANWIDTH=100 man -l "$man_page" 2> /dev/null | col -b)
bad=
for w in "provium run" "provium repl" "provium list" "provium events merge" "provium doctor" "provium kernel" \
         "provium snapshots" "provium boot" "Exit codes" "PROVIUM_CACHE_DIR"; do
  grep -qF -- "$w" <<<"$text" || bad="$bad '$w'"
done
# every flag of cli.md's run table
for f in $(doc_run_flags); do
  grep -qF -- "$f" <<<"$text" || bad="$bad $f"
done
[ -z "$bad" ] && ok "the man page has every subcommand and every flag of docs/cli.md" || nok "man page lacks:$bad"

# bash completion, through the installed file and binary
comp() {
  bash -c '. "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _provium; printf "%s\n" "${COMPREPLY[@]}"' \
    _ "$D$prefix/share/bash-completion/completions/provium" "$P" "${@:2}"
}
cwant() { local d=$1 w=$2; shift 2; local got; got=$(comp "$@" | sort | tr '\n' ' '); [ "$got" = "$w" ] && ok "completion: $d" || nok "completion: $d: got '$got', want '$w'"; }
cwant "subcommands" "boot console doctor events kernel kill list ps repl run shell snapshots version " x ""
cwant "a prefix of a subcommand" "snapshots " x sn
cwant "run flags by prefix" "--shard --shuffle " x run --sh
cwant "--backend values" "auto kvm sandbox " x run --backend ""
cwant "--format values" "json junit pretty tap " x run --format ""
cwant "kernel subcommands" "build hash path " x kernel ""
cwant "snapshots subcommands" "ls prune rm " x snapshots ""
cwant "events merge" "merge " x events me
cwant "events merge flags" "--partial " x events merge --pa
cwant "events merge --format values" "json junit pretty tap " x events merge --format ""
bad=
runflags=$(comp x run -- | tr '\n' ' ')
for f in $(doc_run_flags); do
  [[ " $runflags" == *" $f "* ]] || bad="$bad $f"
done
[ -z "$bad" ] && ok "completion offers every run flag of docs/cli.md" || nok "completion lacks:$bad" "$runflags"
mkdir -p "$W/ct/suite"; touch "$W/ct/suite/a_test.lua"
got=$(cd "$W/ct" && comp x run su)
[ "$got" = suite ] && ok "completion: run completes paths" || nok "completion of paths: '$got'"

# make uninstall removes exactly what install put there
mkdir -p "$D$prefix/share/provium/profiles"; echo 'return {}' > "$D$prefix/share/provium/profiles/mine.lua"
if mk uninstall DESTDIR="$D" BUILD="$build" > "$W/uninstall.log" 2>&1; then ok "make uninstall succeeds"
else nok "make uninstall succeeds" "$(tail -5 "$W/uninstall.log")"; fi
left=$(cd "$D" && find . \( -type f -o -type l \) | sort)
[ "$left" = "./usr/local/share/provium/profiles/mine.lua" ] \
  && ok "uninstall leaves nothing of provium, and keeps a profile the user added" || nok "left after uninstall" "$left"
done_testing
