#!/usr/bin/env bash
# virtio-blk benchmark: the virtio-blk device model, driven in-process by a guest-like driver
# (build/bin/virtio_blk_bench: split ring, EVENT_IDX, MSI-X, io_uring underneath), against fio
# with --ioengine=io_uring on the same file with the same pattern: 4 KiB random reads and random
# writes at queue depth 32, O_DIRECT on both sides. Images: (a) a raw file and (b) a dynamic VHD
# whose blocks are all allocated (fio reads and writes a copy of the VHD file, the physical limit
# for the same bytes on disk: fio's random writes would overwrite the VHD's own metadata). Runs
# alternate (vireo, fio, vireo, fio...) and the best of REPEAT runs of each counts, so a noisy neighbour hurts both sides alike. Prints IOPS and the
# vireo/fio ratio; targets: >= 0.9 on raw, >= 0.8 on VHD.
#
# Environment: SECONDS_PER_RUN (default 10), REPEAT (default 2), SIZE_MIB (default 1024),
# TMPDIR (where images go; default /var/tmp), BENCH (the driver binary).
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
BENCH=${BENCH:-$here/build/bin/virtio_blk_bench}
RUNTIME=${SECONDS_PER_RUN:-10}
REPEAT=${REPEAT:-2}
SIZE_MIB=${SIZE_MIB:-1024}
command -v fio >/dev/null || { echo "virtio-blk.sh: fio not installed (scripts/setup)"; exit 1; }
command -v qemu-img >/dev/null || { echo "virtio-blk.sh: qemu-img not installed (scripts/setup)"; exit 1; }
[[ -x $BENCH ]] || { echo "virtio-blk.sh: $BENCH not built (cmake --build build --target virtio_blk_bench)"; exit 1; }

tmp=$(mktemp -d "${TMPDIR:-/var/tmp}/vireo-bench-blk.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

echo "# virtio-blk benchmark: device model (in-process driver) vs fio --ioengine=io_uring"
echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(free -g | awk '/Mem:/{print $2}') GiB RAM, kernel $(uname -r)"
echo "images:  $tmp on $(df --output=fstype "$tmp" | tail -1) ($(df --output=source "$tmp" | tail -1))"
echo "peer:    $(fio --version)"
echo "pattern: 4 KiB, queue depth 32, O_DIRECT, ${RUNTIME}s per run, best of $REPEAT; image ${SIZE_MIB} MiB"
echo

# Fully written images, so neither side measures allocation.
head -c $((SIZE_MIB * 1024 * 1024)) /dev/urandom >"$tmp/raw.img"
qemu-img convert -q -f raw -O vpc -o subformat=dynamic "$tmp/raw.img" "$tmp/dynamic.vhd"
cp "$tmp/dynamic.vhd" "$tmp/dynamic.fio.vhd"
# Written through the page cache: write it back and drop it, or the first O_DIRECT writer (always
# vireo, which runs first) would pay for invalidating the cached pages of every block it writes.
sync
for f in "$tmp"/*; do dd if="$f" iflag=nocache count=0 status=none; done

vireo_iops() {  # image format rw
    "$BENCH" "$1" --format "$2" --rw "$3" --bs 4096 --qd 32 --seconds "$RUNTIME" |
        python3 -c 'import json,sys; print(int(json.load(sys.stdin)["iops"]))'
}
fio_iops() {  # image rw
    fio --name=bench --filename="$1" --ioengine=io_uring --direct=1 --rw="$2" --bs=4k --iodepth=32 \
        --runtime="$RUNTIME" --time_based --size="$(stat -c %s "$1")" --norandommap --randrepeat=0 \
        --output-format=json 2>/dev/null |
        python3 -c 'import json,sys; j=json.load(sys.stdin)["jobs"][0]; print(int(j["read"]["iops"] + j["write"]["iops"]))'
}

status=0
printf '%-8s %-10s %12s %12s %8s %8s\n' image pattern "vireo IOPS" "fio IOPS" ratio target
for spec in "raw raw.img raw.img raw 0.9" "vhd dynamic.vhd dynamic.fio.vhd vhd 0.8"; do
    read -r name file fio_file fmt target <<<"$spec"
    for rw in randread randwrite; do
        best_v=0
        best_f=0
        for ((i = 0; i < REPEAT; i++)); do
            v=$(vireo_iops "$tmp/$file" "$fmt" "$rw")
            f=$(fio_iops "$tmp/$fio_file" "$rw")
            ((v > best_v)) && best_v=$v
            ((f > best_f)) && best_f=$f
        done
        ratio=$(python3 -c "print(f'{$best_v / max($best_f, 1):.2f}')")
        verdict=$(python3 -c "print('ok' if $best_v >= $target * $best_f else 'MISSED')")
        [[ $verdict == ok ]] || status=1
        printf '%-8s %-10s %12d %12d %8s %8s %s\n' "$name" "$rw" "$best_v" "$best_f" "$ratio" ">=$target" "$verdict"
    done
done
exit $status
