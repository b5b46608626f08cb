#!/usr/bin/env bash
# Snapshot and restore, Vireo against QEMU (the peer: migration to a file and -incoming from it):
# for a 256 MiB and a 1 GiB guest that touched 32 MiB, the time to write a snapshot, its size on
# disk, and the time to restore it until the guest runs again. Targets: restore under 20 ms,
# snapshot size within 10% of the touched memory.
#
#   bench/snapshot.sh [BUILD_DIR] [RUNS]      (default build, 5 restores per size)
#
# Restore times: "internal" is what vireo-vmm logs (snapshot read and checked, VM built around
# the lazily mapped memory, state loaded, vCPUs running); "to running" is the wall time from
# exec until the control API (Vireo) or QMP (QEMU) reports the VM running, process start
# included, polled every millisecond.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$top/build}
runs=${2:-5}
vmm="$build/bin/vireo-vmm"
guest="$build/guests/pvh64.elf"
for f in "$vmm" "$guest"; do
  [[ -e $f ]] || { echo "snapshot.sh: $f is missing: build first (make build)" >&2; exit 1; }
done
qemu=$(command -v qemu-system-x86_64 || true)
[[ -n $qemu ]] || echo "snapshot.sh: qemu-system-x86_64 not found: Vireo only (package qemu-system-x86)" >&2
[[ -r /dev/kvm ]] || { echo "snapshot.sh: /dev/kvm is not usable" >&2; exit 1; }

exec python3 - "$vmm" "$guest" "$qemu" "$runs" <<'PY'
import json, os, re, shutil, socket, statistics, subprocess, sys, tempfile, time

vmm, guest, qemu, runs = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
TOUCH_MIB = 32
work = tempfile.mkdtemp(prefix="vireo-bench-snap-")

def wait_for(cond, what, timeout=120.0, step=0.001):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = cond()
        if v:
            return v
        time.sleep(step)
    raise SystemExit(f"snapshot.sh: timed out waiting for {what}")

def http(sock_path, method, path, body=None, timeout=120):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(sock_path)
    data = (body or "").encode()
    s.sendall(f"{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(data)}\r\nConnection: close\r\n\r\n".encode() + data)
    out = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        out += chunk
    s.close()
    head, _, rest = out.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(rest or b"{}")

def api_state(sock_path):
    try:
        return http(sock_path, "GET", "/api/v1/vm", timeout=5)[1].get("state")
    except OSError:
        return None

def allocated(path):
    if os.path.isfile(path):
        return os.stat(path).st_blocks * 512
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            total += os.stat(os.path.join(root, f)).st_blocks * 512
    return total

def serial_has(path, text):
    try:
        with open(path, errors="replace") as f:
            return text in f.read()
    except FileNotFoundError:
        return False

class Qmp:
    def __init__(self, path):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.connect(path)
        self.f = self.s.makefile("rw")
        json.loads(self.f.readline())  # greeting
        self.cmd("qmp_capabilities")
    def cmd(self, name, **args):
        self.f.write(json.dumps({"execute": name, "arguments": args} if args else {"execute": name}) + "\n")
        self.f.flush()
        while True:
            reply = json.loads(self.f.readline())
            if "return" in reply or "error" in reply:
                return reply

def connect_qmp(path, proc):
    def ready():
        if proc.poll() is not None:
            raise SystemExit(f"snapshot.sh: qemu exited: {proc.stderr.read()}")
        try:
            return Qmp(path)
        except OSError:
            return None
    return wait_for(ready, f"QMP at {path}")

def vireo(mib):
    d = os.path.join(work, f"vireo-{mib}")
    os.makedirs(d)
    sock, out, snap = f"{d}/api.sock", f"{d}/serial.out", f"{d}/snap"
    p = subprocess.Popen([vmm, "--kernel", guest, "--memory", str(mib), "--cmdline", f"touch={TOUCH_MIB} exit=hang",
                          "--serial", f"file:{out}", "--api-socket", sock],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wait_for(lambda: serial_has(out, "exit: hang"), f"the guest to touch its memory ({out})")
    t = time.monotonic()
    status, reply = http(sock, "PUT", "/api/v1/vm.snapshot", json.dumps({"destination": snap, "resume": False}))
    snap_ms = (time.monotonic() - t) * 1000
    if status != 200:
        raise SystemExit(f"snapshot.sh: vireo snapshot failed: {reply}")
    http(sock, "PUT", "/api/v1/vm.power-off")
    p.wait(timeout=60)
    internal, to_running = [], []
    for i in range(runs):
        rsock = f"{d}/r{i}.sock"
        t = time.monotonic()
        r = subprocess.Popen([vmm, "--restore", snap, "--serial", "none", "--api-socket", rsock, "--log-level", "info"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        wait_for(lambda: api_state(rsock) == "running", "the restored VM to run")
        to_running.append((time.monotonic() - t) * 1000)
        http(rsock, "PUT", "/api/v1/vm.power-off")
        err = r.communicate(timeout=60)[1]
        m = re.search(r"restored from .* in ([0-9.]+) ms", err)
        if not m:
            raise SystemExit(f"snapshot.sh: no restore time in the log:\n{err}")
        internal.append(float(m.group(1)))
    return {"snapshot_ms": snap_ms, "pause_ms": reply["pause_ms"], "size": allocated(snap),
            "restore_internal_ms": statistics.median(internal), "restore_ms": statistics.median(to_running)}

def qemu_run(mib):
    d = os.path.join(work, f"qemu-{mib}")
    os.makedirs(d)
    qmp, out, state = f"{d}/qmp.sock", f"{d}/serial.out", f"{d}/state.bin"
    base = [qemu, "-M", "microvm", "-enable-kvm", "-m", str(mib), "-kernel", guest, "-append",
            f"touch={TOUCH_MIB} exit=hang", "-nodefaults", "-no-user-config", "-display", "none"]
    p = subprocess.Popen(base + ["-serial", f"file:{out}", "-qmp", f"unix:{qmp},server=on,wait=off"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    q = connect_qmp(qmp, p)
    wait_for(lambda: serial_has(out, "exit: hang"), f"the guest to touch its memory ({out})")
    t = time.monotonic()
    q.cmd("stop")
    q.cmd("migrate", uri=f"exec:cat > {state}")
    wait_for(lambda: q.cmd("query-migrate")["return"].get("status") in ("completed", "failed"), "qemu to write its state")
    snap_ms = (time.monotonic() - t) * 1000
    if q.cmd("query-migrate")["return"]["status"] != "completed":
        raise SystemExit("snapshot.sh: qemu migration to file failed")
    q.cmd("quit")
    p.wait(timeout=60)
    to_running = []
    for i in range(runs):
        rq = f"{d}/r{i}.sock"
        t = time.monotonic()
        r = subprocess.Popen(base + ["-serial", "null", "-qmp", f"unix:{rq},server=on,wait=off",
                                     "-incoming", f"exec:cat {state}"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        c = connect_qmp(rq, r)
        # The source was stopped, so QEMU loads the state into a paused VM; then it is resumed.
        wait_for(lambda: c.cmd("query-status")["return"]["status"] not in ("inmigrate", "prelaunch"),
                 "qemu to load its state")
        c.cmd("cont")
        wait_for(lambda: c.cmd("query-status")["return"]["status"] == "running", "qemu to run")
        to_running.append((time.monotonic() - t) * 1000)
        c.cmd("quit")
        r.wait(timeout=60)
    return {"snapshot_ms": snap_ms, "size": allocated(state), "restore_ms": statistics.median(to_running)}

try:
    touched = TOUCH_MIB << 20
    print(f"guest: tiny PVH guest that writes every page of {TOUCH_MIB} MiB, then halts; {runs} restores per size\n")
    for mib in (256, 1024):
        v = vireo(mib)
        q = qemu_run(mib) if qemu else None
        print(f"== {mib} MiB guest, {TOUCH_MIB} MiB touched")
        print(f"  vireo: snapshot {v['snapshot_ms']:7.1f} ms (vCPUs paused {v['pause_ms']} ms), "
              f"size {v['size'] / 2**20:6.1f} MiB ({(v['size'] / touched - 1) * 100:+.1f}% of touched), "
              f"restore {v['restore_internal_ms']:5.1f} ms internal, {v['restore_ms']:6.1f} ms exec to running")
        if q:
            print(f"  qemu:  snapshot {q['snapshot_ms']:7.1f} ms, size {q['size'] / 2**20:6.1f} MiB "
                  f"({(q['size'] / touched - 1) * 100:+.1f}% of touched), restore {q['restore_ms']:6.1f} ms exec to running")
            print(f"  ratio vireo/qemu: snapshot time {v['snapshot_ms'] / q['snapshot_ms']:.2f}, "
                  f"size {v['size'] / q['size']:.2f}, restore (exec to running) {v['restore_ms'] / q['restore_ms']:.2f}")
        ok_restore = v["restore_internal_ms"] < 20
        ok_size = abs(v["size"] / touched - 1) <= 0.10
        print(f"  targets: restore < 20 ms {'met' if ok_restore else 'MISSED'}; "
              f"size within 10% of touched {'met' if ok_size else 'MISSED'}\n")
finally:
    shutil.rmtree(work, ignore_errors=True)
PY
