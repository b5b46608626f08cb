#!/usr/bin/env bash
# Startup benchmark: the same PVH guest (tests/guests pvh32.elf with "quiet exit=triple": it
# triple-faults at once, which ends both VMMs) is started N times by vireo-vmm and by QEMU's
# microvm machine (the peer), alternating. Reports median wall time from exec to exit, median
# peak RSS (GNU time), guest memory touched, the RSS overhead (peak RSS minus guest memory
# touched) and the Vireo/QEMU ratios. Targets: time <= 1/4 of QEMU's, overhead <= 1/8.
#
# Beside them it runs bench/kvm_floor.c, the bare KVM calls any such VMM makes (VM, irqchip,
# PIT, memory slot, vCPU, one run, close), with the VM's destruction handed to a child process as
# vireo-vmm does: the kernel's share of the critical path, which neither VMM can avoid. Where
# KVM's own setup and teardown are slow (nested or software-emulated KVM, where each SRCU grace
# period KVM waits for, such as those of a memory slot change or of leaving PIT tick
# reinjection, costs milliseconds), they dominate a VMM that waits for them; the time each VMM
# spends above the floor is reported too. The wall time ends when the VMM process has exited
# (the caller's wait returns), as a shell or a manager sees it.
#
# usage: bench/startup.sh [N]     (N defaults to 30; BUILD_DIR defaults to build)
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$top/build}
n=${1:-30}
guest=$build/guests/pvh32.elf
vmm=$build/bin/vireo-vmm
qemu=$(command -v qemu-system-x86_64 || true)
mem=128
for f in "$guest" "$vmm" /usr/bin/time; do
  [[ -x $f || -f $f ]] || { echo "startup.sh: $f is missing (make build; scripts/setup)" >&2; exit 1; }
done
[[ -n $qemu ]] || { echo "startup.sh: qemu-system-x86_64 is missing (scripts/setup)" >&2; exit 1; }
[[ -w /dev/kvm ]] || { echo "startup.sh: /dev/kvm is not usable" >&2; exit 1; }

vireo_cmd=("$vmm" --kernel "$guest" --cmdline "quiet exit=triple" --memory "$mem" --serial none)
qemu_cmd=("$qemu" -M microvm -enable-kvm -cpu qemu64 -m "$mem" -kernel "$guest" -append "quiet exit=triple"
          -nodefaults -no-user-config -nographic -display none -serial none -monitor none -no-reboot)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cc -O2 -o "$work/kvm_floor" "$top/bench/kvm_floor.c"

# One run: "<wall ms> <max RSS KB> <exit status>". GNU time forks and execs the VMM, so the peak
# RSS is the VMM's own (a larger parent would leak its size into ru_maxrss across exec).
one() {
  local start end
  start=$(date +%s%N)
  /usr/bin/time -f "%M %x" -o "$work/t" "$@" </dev/null >/dev/null 2>"$work/err" || true
  end=$(date +%s%N)
  read -r rss status <"$work/t" || { rss=0; status=-1; }
  echo "$(( (end - start) / 1000 )) $rss $status"
}

: >"$work/vireo"
: >"$work/qemu"
: >"$work/floor"
for ((i = 0; i < n; i++)); do
  one "${vireo_cmd[@]}" >>"$work/vireo"
  one "${qemu_cmd[@]}" >>"$work/qemu"
  one "$work/kvm_floor" >>"$work/floor"
done

# Guest memory each VMM touched: Vireo reports it (debug log); QEMU's RAM is put in a file
# under /dev/shm for one extra run and the file's allocated blocks are counted.
vireo_touched=$("$vmm" --kernel "$guest" --cmdline "quiet exit=triple" --memory "$mem" --serial none \
  --log-level debug 2>&1 </dev/null | sed -n 's/.*guest RAM touched: \([0-9]*\) KiB.*/\1/p')
ramfile=/dev/shm/vireo-bench-qemu-ram.$$
"${qemu_cmd[@]}" -object memory-backend-file,id=ram0,size=${mem}M,mem-path=$ramfile,share=on \
  -machine memory-backend=ram0 </dev/null >/dev/null 2>&1 || true
qemu_touched=$(( $(stat -c %b "$ramfile" 2>/dev/null || echo 0) * $(stat -c %B "$ramfile" 2>/dev/null || echo 512) / 1024 ))
rm -f "$ramfile"

python3 - "$work/vireo" "$work/qemu" "${vireo_touched:-0}" "$qemu_touched" "$n" "$work/floor" <<'PY'
import statistics, sys
def load(path):
    rows = [tuple(int(x) for x in line.split()) for line in open(path) if line.strip()]
    bad = [r for r in rows if r[2] != 0]
    if bad:
        sys.exit(f"startup.sh: {len(bad)} runs in {path} did not exit with status 0")
    return rows
vireo, qemu, floor = load(sys.argv[1]), load(sys.argv[2]), load(sys.argv[6])
vt, qt, n = int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
def med(rows, i): return statistics.median(r[i] for r in rows)
vms, qms = med(vireo, 0) / 1000, med(qemu, 0) / 1000
vrss, qrss = med(vireo, 1), med(qemu, 1)
vover, qover = vrss - vt, qrss - qt
print(f"startup of a PVH guest that exits at once, {n} runs each, {open('/proc/cpuinfo').read().count('processor')} host CPUs")
print(f"{'':22}{'vireo-vmm':>12}{'qemu microvm':>15}{'ratio':>9}   target")
print(f"{'wall time (median)':22}{vms:>9.1f} ms{qms:>12.1f} ms{vms / qms:>9.3f}   <= 0.250")
print(f"{'peak RSS (median)':22}{vrss / 1024:>9.1f} MB{qrss / 1024:>12.1f} MB{vrss / qrss:>9.3f}")
print(f"{'guest RAM touched':22}{vt / 1024:>9.2f} MB{qt / 1024:>12.2f} MB")
print(f"{'RSS overhead':22}{vover / 1024:>9.1f} MB{qover / 1024:>12.1f} MB{vover / qover:>9.3f}   <= 0.125")
fms = med(floor, 0) / 1000
print(f"{'KVM floor (kvm_floor.c)':22}{fms:>9.1f} ms")
print(f"{'time above the floor':22}{vms - fms:>9.1f} ms{qms - fms:>12.1f} ms{(vms - fms) / (qms - fms):>9.3f}")
print(f"{'wall time min/max':22}{min(r[0] for r in vireo) / 1000:>6.1f}/{max(r[0] for r in vireo) / 1000:<5.1f}{min(r[0] for r in qemu) / 1000:>8.1f}/{max(r[0] for r in qemu) / 1000:<6.1f}")
PY
