#!/usr/bin/env bash
# Disk benchmark: `vireo img bench` and `qemu-img bench` run the same workloads, side by side in
# one run, on raw, fixed VHD and dynamic VHD images: first writes that allocate, then rewrites of
# the same range, then reads; 4 KiB and 64 KiB requests; sequential and scattered; queue depth 1
# and 32. Prints each pair's times and throughput ratio (vireo/qemu), then Vireo's dynamic VHD
# against Vireo's raw, and checks the targets of the disk issue.
#
# "Scattered" uses qemu-img bench's own options: a step of 7919 requests (prime, coprime with the
# number of request slots in the disk) wraps around the disk and visits every slot once before
# repeating — a random-looking pattern both tools run identically (qemu-img bench has no random
# mode).
#
# Shared machines are noisy: every workload runs REPEAT times (fresh images each time, formats and
# tools interleaved) and the best time of each side counts.
#
# Environment: VIREO (binary, default build/bin/vireo), CACHE (default none = O_DIRECT on both
# sides), AIO (default io_uring on both sides), TMPDIR (where images go), REPEAT (default 2),
# QUICK=1 (a quarter of the requests, one repetition), SCALE=N (N times the requests, at most one
# pass over the disk, so that "alloc" still only allocates: longer runs, less noise), FORMATS
# (default "raw fixed dynamic").
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
VIREO=${VIREO:-$here/build/bin/vireo}
CACHE=${CACHE:-none}
AIO=${AIO:-io_uring}
QUICK=${QUICK:-0}
REPEAT=${REPEAT:-2}
SCALE=${SCALE:-1}
[[ $QUICK == 1 ]] && REPEAT=1
FORMATS=${FORMATS:-raw fixed dynamic}
command -v qemu-img >/dev/null || { echo "disk.sh: qemu-img not installed (scripts/setup)"; exit 1; }
[[ -x $VIREO ]] || { echo "disk.sh: $VIREO not built (make build)"; exit 1; }

# 520 cylinders x 16 heads x 63 sectors: a size whose CHS geometry is exact, so every VHD reader
# sees the same size, and a multiple of 64 KiB, so wrapped requests never straddle the end.
# 128 dynamic-VHD blocks of 2 MiB.
DISK_SIZE=268369920
STRIDE=7919

tmp=$(mktemp -d "${TMPDIR:-/var/tmp}/vireo-bench-disk.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

echo "# Disk benchmark: vireo img bench vs qemu-img bench"
echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(free -g | awk '/Mem:/{print $2}') GiB RAM, kernel $(uname -r), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "images:  $tmp on $(df --output=fstype "$tmp" | tail -1) ($(df --output=source "$tmp" | tail -1))"
echo "peer:    $(qemu-img --version | head -1)"
echo "options: -t $CACHE -i $AIO on both sides; disk $DISK_SIZE bytes; best of $REPEAT; quick=$QUICK; scale=$SCALE"
echo

make_image() {  # format path
    case $1 in
        raw) qemu-img create -q -f raw "$2" "$DISK_SIZE" ;;
        fixed) qemu-img create -q -f vpc -o subformat=fixed "$2" "$DISK_SIZE" ;;
        dynamic) qemu-img create -q -f vpc -o subformat=dynamic "$2" "$DISK_SIZE" ;;
    esac
}

# Runs one tool; prints the seconds or "fail".
run_one() {  # tool format image args...
    local tool=$1 fmt=$2 image=$3
    shift 3
    local qfmt=$fmt out
    [[ $fmt == raw ]] || qfmt=vpc
    if [[ $tool == vireo ]]; then
        out=$("$VIREO" img bench -f "$qfmt" -t "$CACHE" -i "$AIO" "$@" "$image" 2>&1) || { echo "fail"; echo "$out" | tail -1 >&2; return; }
    else
        out=$(qemu-img bench -f "$qfmt" -t "$CACHE" -i "$AIO" "$@" "$image" 2>&1) || { echo "fail"; echo "$out" | tail -1 >&2; return; }
    fi
    sed -n 's/^Run completed in \([0-9.]*\) seconds\.$/\1/p' <<<"$out"
}

best() {  # old new -> the smaller time ("fail" loses)
    awk -v a="$1" -v b="$2" 'BEGIN{ if (a=="" || a=="fail") print b; else if (b=="fail") print a; else print (b+0 < a+0) ? b : a }'
}
mibs() {  # MiB seconds -> MiB/s or -
    awk -v m="$1" -v t="$2" 'BEGIN{if (t=="fail"||t<=0) print "-"; else printf "%.1f", m/t}'
}
ratio() {
    awk -v a="$1" -v b="$2" 'BEGIN{if (a=="-"||b=="-"||b==0) print "-"; else printf "%.2f", a/b}'
}

declare -A VT QT       # best seconds, key "format op bs pattern qd"
declare -A VIREO_MBS QEMU_MBS
printf '%-8s %-8s %-4s %-9s %-3s %6s | %8s %9s | %8s %9s | %s\n' \
    format op bs pattern qd count "vireo s" "MiB/s" "qemu s" "MiB/s" "vireo/qemu"

for bs in 4096 65536; do
    for pattern in seq scattered; do
        for qd in 1 32; do
            if [[ $bs == 4096 ]]; then count=$((qd == 1 ? 2000 : 8000)); else count=$((qd == 1 ? 500 : 1600)); fi
            [[ $QUICK == 1 ]] && count=$((count / 4))
            count=$((count * SCALE))
            ((count > DISK_SIZE / bs)) && count=$((DISK_SIZE / bs))
            step=$bs
            [[ $pattern == scattered ]] && step=$((bs * STRIDE))
            for ((rep = 0; rep < REPEAT; rep++)); do
                for fmt in $FORMATS; do
                    make_image "$fmt" "$tmp/vireo.img"
                    cp --sparse=always "$tmp/vireo.img" "$tmp/qemu.img"
                    for op in alloc rewrite read; do
                        args=(-c "$count" -d "$qd" -s "$bs" -S "$step")
                        [[ $op != read ]] && args+=(-w --pattern 165)
                        key="$fmt $op $bs $pattern $qd"
                        # Alternate which tool goes first.
                        if ((rep % 2 == 0)); then
                            v=$(run_one vireo "$fmt" "$tmp/vireo.img" "${args[@]}")
                            q=$(run_one qemu "$fmt" "$tmp/qemu.img" "${args[@]}")
                        else
                            q=$(run_one qemu "$fmt" "$tmp/qemu.img" "${args[@]}")
                            v=$(run_one vireo "$fmt" "$tmp/vireo.img" "${args[@]}")
                        fi
                        VT[$key]=$(best "${VT[$key]:-}" "$v")
                        QT[$key]=$(best "${QT[$key]:-}" "$q")
                    done
                    rm -f "$tmp/vireo.img" "$tmp/qemu.img"
                done
            done
            mib=$(awk -v c="$count" -v b="$bs" 'BEGIN{printf "%.3f", c*b/1048576}')
            for fmt in $FORMATS; do
                for op in alloc rewrite read; do
                    key="$fmt $op $bs $pattern $qd"
                    VIREO_MBS[$key]=$(mibs "$mib" "${VT[$key]}")
                    QEMU_MBS[$key]=$(mibs "$mib" "${QT[$key]}")
                    printf '%-8s %-8s %-4s %-9s %-3s %6s | %8s %9s | %8s %9s | %s\n' \
                        "$fmt" "$op" "$((bs / 1024))K" "$pattern" "$qd" "$count" "${VT[$key]}" "${VIREO_MBS[$key]}" \
                        "${QT[$key]}" "${QEMU_MBS[$key]}" "$(ratio "${VIREO_MBS[$key]}" "${QEMU_MBS[$key]}")"
                done
            done
        done
    done
done

echo
echo "# Vireo dynamic VHD vs Vireo raw (throughput ratio), and the targets"
echo "# targets: dynamic allocating writes >= 3x qemu vpc and >= 0.8x raw; dynamic reads >= 0.9x raw"
printf '%-8s %-4s %-9s %-3s | %8s | %9s | %s\n' op bs pattern qd "dyn/raw" "dyn/qemu" verdict
misses=0
for op in alloc rewrite read; do
    for bs in 4096 65536; do
        for pattern in seq scattered; do
            for qd in 1 32; do
                d=${VIREO_MBS["dynamic $op $bs $pattern $qd"]:--}
                r=${VIREO_MBS["raw $op $bs $pattern $qd"]:--}
                q=${QEMU_MBS["dynamic $op $bs $pattern $qd"]:--}
                vr=$(ratio "$d" "$r")
                vq=$(ratio "$d" "$q")
                verdict=""
                if [[ $vr == - ]]; then
                    verdict="n/a"
                elif [[ $op == alloc ]]; then
                    verdict=$(awk -v r="$vr" -v q="$vq" 'BEGIN{print (r>=0.8 && q>=3) ? "ok" : "MISS"}')
                elif [[ $op == read ]]; then
                    verdict=$(awk -v r="$vr" 'BEGIN{print (r>=0.9) ? "ok" : "MISS"}')
                fi
                [[ $verdict == MISS ]] && misses=$((misses + 1))
                printf '%-8s %-4s %-9s %-3s | %8s | %9s | %s\n' "$op" "$((bs / 1024))K" "$pattern" "$qd" "$vr" "$vq" "$verdict"
            done
        done
    done
done
echo
echo "targets missed: $misses"
