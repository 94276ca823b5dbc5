#!/usr/bin/env bash
# arm64_halt.sh — run INSIDE the arm64 simulated host (tier-arm64.sh): halt detection on
# arm64 (docs/arm64.md, docs/vmm.md "Halt detection"). Tiny hand-made arm64 Images,
# booted with `provium boot`: a vCPU in `wfi; b .-4` with every exception masked ends
# the VM as halted; with interrupts unmasked, or with anything else in the loop, it
# keeps running (a wake-up could still lead it out) until interrupted.
. "$(dirname "$0")/../runner/lib.sh"
[ "$(uname -m)" = aarch64 ] || { echo "1..0 # SKIP not an arm64 host"; exit 0; }
[ -c /dev/kvm ] || { echo "1..0 # SKIP no /dev/kvm"; exit 0; }

le32() { printf "\\x$(printf %02x $(($1 & 255)))\\x$(printf %02x $(($1 >> 8 & 255)))\\x$(printf %02x $(($1 >> 16 & 255)))\\x$(printf %02x $(($1 >> 24 & 255)))"; }
# image FILE INSN...: an arm64 Image (booting.rst header: a branch over the 64-byte
# header, text_offset 0, image_size 4 KiB, "ARM\x64") whose code is INSN...
image() {
  local f=$1; shift
  { le32 0x14000010; le32 0                       # code0: b +64; code1
    le32 0; le32 0; le32 4096; le32 0              # text_offset, image_size
    le32 0; le32 0; le32 0; le32 0; le32 0; le32 0; le32 0; le32 0  # flags, res2-4
    printf 'ARM\x64'; le32 0                         # magic, res5
    for i in "$@"; do le32 "$i"; done; } > "$f"
}
MASK=0xd5034fdf UNMASK=0xd5034fff WFI=0xd503207f BACK1=0x17ffffff BACK2=0x17fffffe NOP=0xd503201f

image "$W/halt" $MASK $WFI $BACK1
start=$(date +%s)
expect_code 1 "wfi loop with every exception masked: the VM ends as halted" \
  timeout 120 "$PROVIUM" boot --kernel "$W/halt" --memory 16
grep -q 'every vCPU halted with interrupts disabled (vcpu 0 at pc=0x[0-9a-f]*): the guest can never run again' "$W/err" &&
  ok "the halt says so, with the vCPU's pc ($(( $(date +%s) - start )) s)" || nok "the halt's message" "$(cat "$W/err")"

image "$W/irq-on" $UNMASK $WFI $BACK1
expect_code 130 "wfi loop with interrupts unmasked: runs until interrupted" \
  timeout -s INT 8 "$PROVIUM" boot --kernel "$W/irq-on" --memory 16
image "$W/more" $MASK $WFI $NOP $BACK2
expect_code 130 "masked wfi loop with another instruction in it: runs until interrupted" \
  timeout -s INT 8 "$PROVIUM" boot --kernel "$W/more" --memory 16
echo "1..$n"
