/* The virtio test guest (64-bit PVH): a minimal virtio 1.x PCI driver that does what its
 * command line asks, printing results on COM1, then powers off:
 *   pci         list bus 0 through configuration mechanism #1 and check ECAM agrees
 *   blk         virtio-blk: capacity, serial, sector 0; write sectors 8-15 with a pattern,
 *               flush, read them back; an MSI-X interrupt through the LAPIC; a read past the end
 *   net         virtio-net: send an Ethernet frame (type 0x88b5) and wait for one back
 *   reset-io    virtio-blk: reset the device with a request in flight, then use it again
 *   blk-loop    virtio-blk, forever: each round writes 8 requests of 64 KiB at once (all in
 *               flight together), flushes, reads them back at once and checks them; prints
 *               "blk-loop: round N ok" (a snapshot taken meanwhile must lose nothing)
 * Queues are polled; interrupts are checked by the ISR (INTx) and by an MSI-X vector taken on
 * an IDT entry. Integer-only, freestanding. */
#include <stddef.h>
#include <stdint.h>

#include "guest.h"

#define COM1 0x3f8
#define LAPIC 0xfee00000ull
#define MSI_VECTOR 0x40
#define PAGE(n) (0x400000ull + (uint64_t)(n)*0x1000) /* guest memory for rings and buffers */

static inline void outb(uint16_t port, uint8_t v) {
    __asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port));
}
static inline void outw(uint16_t port, uint16_t v) {
    __asm__ volatile("outw %0, %1" : : "a"(v), "Nd"(port));
}
static inline void outl(uint16_t port, uint32_t v) {
    __asm__ volatile("outl %0, %1" : : "a"(v), "Nd"(port));
}
static inline uint8_t inb(uint16_t port) {
    uint8_t v;
    __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
    return v;
}
static inline uint32_t inl(uint16_t port) {
    uint32_t v;
    __asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(port));
    return v;
}
#define barrier() __asm__ volatile("" ::: "memory")
static inline void cpu_relax(void) {
    __asm__ volatile("pause" ::: "memory");
}

static inline uint8_t r8(uint64_t a) {
    return *(volatile uint8_t*)(uintptr_t)a;
}
static inline uint16_t r16(uint64_t a) {
    return *(volatile uint16_t*)(uintptr_t)a;
}
static inline uint32_t r32(uint64_t a) {
    return *(volatile uint32_t*)(uintptr_t)a;
}
static inline uint64_t r64(uint64_t a) {
    return *(volatile uint64_t*)(uintptr_t)a;
}
static inline void w8(uint64_t a, uint8_t v) {
    *(volatile uint8_t*)(uintptr_t)a = v;
}
static inline void w16(uint64_t a, uint16_t v) {
    *(volatile uint16_t*)(uintptr_t)a = v;
}
static inline void w32(uint64_t a, uint32_t v) {
    *(volatile uint32_t*)(uintptr_t)a = v;
}
static inline void w64(uint64_t a, uint64_t v) {
    *(volatile uint64_t*)(uintptr_t)a = v;
}

void* memcpy(void* dst, const void* src, size_t n) {
    uint8_t* d = dst;
    const uint8_t* s = src;
    while (n--)
        *d++ = *s++;
    return dst;
}
void* memset(void* dst, int c, size_t n) {
    uint8_t* d = dst;
    while (n--)
        *d++ = (uint8_t)c;
    return dst;
}

/* ---- serial ---- */
static void putc_(char c) {
    while (!(inb(COM1 + 5) & 0x20)) {
    }
    outb(COM1, (uint8_t)c);
}
static void puts_(const char* s) {
    while (*s)
        putc_(*s++);
}
static void put_hex(uint64_t v, int digits) {
    for (int i = digits - 1; i >= 0; --i)
        putc_("0123456789abcdef"[(v >> (i * 4)) & 0xf]);
}
static void put_dec(uint64_t v) {
    char buf[24];
    int n = 0;
    do {
        buf[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n)
        putc_(buf[--n]);
}

static void poweroff(void) {
    outw(0x604, (5 << 10) | (1 << 13)); /* ACPI PM1a_CNT: S5 */
    for (;;)
        __asm__ volatile("cli; hlt");
}
static void fail(const char* what) {
    puts_("FAIL: ");
    puts_(what);
    putc_('\n');
    poweroff();
}

/* ---- command line ---- */
static char cmdline[256];
static int has_word(const char* word) {
    const char* p = cmdline;
    while (*p) {
        while (*p == ' ')
            ++p;
        const char* w = word;
        const char* q = p;
        while (*w && *q == *w)
            ++q, ++w;
        if (!*w && (*q == ' ' || *q == 0)) return 1;
        while (*p && *p != ' ')
            ++p;
    }
    return 0;
}

/* ---- PCI ---- */
static uint32_t cfg_read(uint32_t slot, uint32_t off) {
    outl(0xcf8, 0x80000000u | (slot << 11) | (off & 0xfc));
    return inl(0xcfc) >> ((off & 3) * 8);
}
static void cfg_write32(uint32_t slot, uint32_t off, uint32_t v) {
    outl(0xcf8, 0x80000000u | (slot << 11) | (off & 0xfc));
    outl(0xcfc, v);
}
static uint32_t ecam_read(uint32_t slot, uint32_t off) {
    return r32(0xe0000000ull + (slot << 15) + off);
}

static void list_pci(void) {
    int mismatches = 0;
    for (uint32_t slot = 0; slot < 32; ++slot) {
        uint32_t id = cfg_read(slot, 0);
        if (ecam_read(slot, 0) != id || ecam_read(slot, 8) != cfg_read(slot, 8)) ++mismatches;
        if (id == 0xffffffffu) continue;
        puts_("pci: 00:");
        put_hex(slot, 2);
        puts_(".0 ");
        put_hex(id & 0xffff, 4);
        putc_(':');
        put_hex(id >> 16, 4);
        puts_(" class ");
        put_hex(cfg_read(slot, 8) >> 8, 6);
        puts_(" irq ");
        put_dec(cfg_read(slot, 0x3c) & 0xff);
        putc_('\n');
    }
    puts_(mismatches ? "ecam: MISMATCH\n" : "ecam: agrees\n");
}

/* ---- virtio PCI ---- */
struct vdev {
    uint32_t slot;
    uint64_t common, isr, device, notify;
    uint32_t notify_mul;
    uint64_t msix_table;
};

enum {
    C_DFSEL = 0,
    C_DF = 4,
    C_GFSEL = 8,
    C_GF = 12,
    C_MSIX = 0x10,
    C_NUMQ = 0x12,
    C_STATUS = 0x14,
    C_QSEL = 0x16,
    C_QSIZE = 0x18,
    C_QMSIX = 0x1a,
    C_QENABLE = 0x1c,
    C_QNOFF = 0x1e,
    C_QDESC = 0x20,
    C_QDRIVER = 0x28,
    C_QDEVICE = 0x30
};

static int find_virtio(uint32_t device_id, struct vdev* d) {
    for (uint32_t slot = 1; slot < 32; ++slot) {
        if (cfg_read(slot, 0) != (0x1af4u | (device_id << 16))) continue;
        d->slot = slot;
        uint64_t bar[6];
        for (int i = 0; i < 6; ++i)
            bar[i] = cfg_read(slot, 0x10 + 4 * i) & ~0xfu;
        uint32_t at = cfg_read(slot, 0x34) & 0xff;
        while (at) {
            uint32_t id = cfg_read(slot, at) & 0xff;
            if (id == 0x09) {
                uint32_t type = cfg_read(slot, at + 3) & 0xff;
                uint32_t b = cfg_read(slot, at + 4) & 0xff;
                uint64_t addr = bar[b] + cfg_read(slot, at + 8);
                if (type == 1) d->common = addr;
                if (type == 2) {
                    d->notify = addr;
                    d->notify_mul = cfg_read(slot, at + 16);
                }
                if (type == 3) d->isr = addr;
                if (type == 4) d->device = addr;
            } else if (id == 0x11) {
                uint32_t t = cfg_read(slot, at + 4);
                d->msix_table = bar[t & 7] + (t & ~7u);
            }
            at = (cfg_read(slot, at) >> 8) & 0xfc;
        }
        return d->common && d->notify && d->isr;
    }
    return 0;
}

static int virtio_negotiate(struct vdev* d, uint32_t features_lo) {
    w8(d->common + C_STATUS, 0);
    while (r8(d->common + C_STATUS) != 0)
        cpu_relax();
    w8(d->common + C_STATUS, 1);
    w8(d->common + C_STATUS, 3);
    w32(d->common + C_DFSEL, 1);
    if (!(r32(d->common + C_DF) & 1)) return 0; /* VIRTIO_F_VERSION_1 */
    w32(d->common + C_DFSEL, 0);
    features_lo &= r32(d->common + C_DF);
    w32(d->common + C_GFSEL, 0);
    w32(d->common + C_GF, features_lo);
    w32(d->common + C_GFSEL, 1);
    w32(d->common + C_GF, 1);
    w8(d->common + C_STATUS, 3 | 8);
    return (r8(d->common + C_STATUS) & 8) != 0;
}

struct vq {
    uint16_t size, index, avail_idx, last_used;
    uint64_t desc, avail, used, notify;
};

static void vq_setup(struct vdev* d, struct vq* q, uint16_t index, uint16_t size, uint64_t mem,
                     uint16_t vector) {
    w16(d->common + C_QSEL, index);
    uint16_t max = r16(d->common + C_QSIZE);
    if (size > max) size = max;
    w16(d->common + C_QSIZE, size);
    q->size = size;
    q->index = index;
    q->avail_idx = 0;
    q->last_used = 0;
    q->desc = mem;
    q->avail = mem + 16ull * size;
    q->used = (q->avail + 6 + 2ull * size + 3) & ~3ull;
    memset((void*)(uintptr_t)mem, 0, 0x3000);
    w32(d->common + C_QDESC, (uint32_t)q->desc);
    w32(d->common + C_QDESC + 4, 0);
    w32(d->common + C_QDRIVER, (uint32_t)q->avail);
    w32(d->common + C_QDRIVER + 4, 0);
    w32(d->common + C_QDEVICE, (uint32_t)q->used);
    w32(d->common + C_QDEVICE + 4, 0);
    w16(d->common + C_QMSIX, vector);
    q->notify = d->notify + (uint64_t)r16(d->common + C_QNOFF) * d->notify_mul;
    w16(d->common + C_QENABLE, 1);
}

static void vq_desc(struct vq* q, uint16_t i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next) {
    uint64_t a = q->desc + 16ull * i;
    w64(a, addr);
    w32(a + 8, len);
    w16(a + 12, flags);
    w16(a + 14, next);
}
static void vq_publish(struct vq* q, uint16_t head) {
    w16(q->avail + 4 + 2ull * (q->avail_idx % q->size), head);
    barrier();
    ++q->avail_idx;
    w16(q->avail + 2, q->avail_idx);
    barrier();
    w16(q->notify, q->index);
}
/* Waits for the next used entry; returns its length. */
static uint32_t vq_wait(struct vq* q, uint16_t* id) {
    while (r16(q->used + 2) == q->last_used)
        cpu_relax();
    barrier();
    uint64_t e = q->used + 4 + 8ull * (q->last_used % q->size);
    ++q->last_used;
    if (id) *id = (uint16_t)r32(e);
    return r32(e + 4);
}

/* ---- interrupts: one IDT gate for the MSI-X vector ---- */
static volatile uint32_t irq_count;
void msix_handler(void) {
    ++irq_count;
    w32(LAPIC + 0xb0, 0); /* EOI */
}
__asm__(
    ".text\n.globl msix_entry\nmsix_entry:\n"
    "  push %rax; push %rcx; push %rdx; push %rsi; push %rdi; push %r8; push %r9; push %r10; push %r11\n"
    "  call msix_handler\n"
    "  pop %r11; pop %r10; pop %r9; pop %r8; pop %rdi; pop %rsi; pop %rdx; pop %rcx; pop %rax\n"
    "  iretq\n");
extern void msix_entry(void);
static uint8_t idt[16 * (MSI_VECTOR + 1)] __attribute__((aligned(16)));

static void setup_interrupts(void) {
    uint64_t h = (uint64_t)(uintptr_t)msix_entry;
    uint8_t* g = idt + 16 * MSI_VECTOR;
    g[0] = (uint8_t)h;
    g[1] = (uint8_t)(h >> 8);
    g[2] = 0x08; /* code selector of the PVH stub's GDT */
    g[3] = 0;
    g[4] = 0;
    g[5] = 0x8e; /* present, interrupt gate */
    g[6] = (uint8_t)(h >> 16);
    g[7] = (uint8_t)(h >> 24);
    g[8] = (uint8_t)(h >> 32);
    g[9] = (uint8_t)(h >> 40);
    g[10] = (uint8_t)(h >> 48);
    g[11] = (uint8_t)(h >> 56);
    struct __attribute__((packed)) {
        uint16_t limit;
        uint64_t base;
    } desc = {sizeof idt - 1, (uint64_t)(uintptr_t)idt};
    __asm__ volatile("lidt %0" : : "m"(desc));
    w32(LAPIC + 0x80, 0);     /* TPR: accept everything */
    w32(LAPIC + 0xf0, 0x1ff); /* SVR: APIC enabled, spurious vector 0xff */
    __asm__ volatile("sti");
}

/* ---- virtio-blk ---- */
static uint32_t hash_bytes(uint64_t a, uint32_t n) {
    uint32_t h = 0;
    for (uint32_t i = 0; i < n; ++i)
        h = h * 31 + r8(a + i);
    return h;
}

#define BLK_HDR PAGE(8)
#define BLK_STATUS (PAGE(8) + 64)
#define BLK_DATA PAGE(16) /* 8 pages */

static uint8_t blk_request(struct vq* q, uint32_t type, uint64_t sector, uint64_t data, uint32_t len,
                           int writable) {
    w32(BLK_HDR, type);
    w32(BLK_HDR + 4, 0);
    w64(BLK_HDR + 8, sector);
    w8(BLK_STATUS, 0xee);
    if (len) {
        vq_desc(q, 0, BLK_HDR, 16, 1, 1);
        vq_desc(q, 1, data, len, (uint16_t)(1 | (writable ? 2 : 0)), 2);
        vq_desc(q, 2, BLK_STATUS, 1, 2, 0);
    } else {
        vq_desc(q, 0, BLK_HDR, 16, 1, 2);
        vq_desc(q, 2, BLK_STATUS, 1, 2, 0);
    }
    vq_publish(q, 0);
    vq_wait(q, 0);
    return r8(BLK_STATUS);
}

static void run_blk(int use_msix) {
    struct vdev d = {0};
    struct vq q;
    if (!find_virtio(0x1042, &d)) fail("no virtio-blk");
    if (!virtio_negotiate(&d, 1u << 9 /* FLUSH */)) fail("blk: feature negotiation");
    if (use_msix && d.msix_table) {
        /* Vector 1 for queue 0: fixed delivery to APIC 0, vector MSI_VECTOR. */
        w32(d.msix_table + 16 + 0, 0xfee00000u);
        w32(d.msix_table + 16 + 4, 0);
        w32(d.msix_table + 16 + 8, MSI_VECTOR);
        w32(d.msix_table + 16 + 12, 0);
        uint32_t at = cfg_read(d.slot, 0x34) & 0xff;
        while (at && (cfg_read(d.slot, at) & 0xff) != 0x11)
            at = (cfg_read(d.slot, at) >> 8) & 0xfc;
        cfg_write32(d.slot, at, cfg_read(d.slot, at) | 0x80000000u); /* MSI-X enable */
    }
    vq_setup(&d, &q, 0, 16, PAGE(0), use_msix ? 1 : 0xffff);
    w8(d.common + C_STATUS, 3 | 8 | 4);
    puts_("blk: capacity ");
    put_dec(r32(d.device) | ((uint64_t)r32(d.device + 4) << 32));
    putc_('\n');

    if (blk_request(&q, 8, 0, BLK_DATA, 20, 1) != 0) fail("blk: get-id");
    puts_("blk: serial ");
    for (int i = 0; i < 20 && r8(BLK_DATA + i); ++i)
        putc_((char)r8(BLK_DATA + i));
    putc_('\n');
    if (!use_msix) {
        puts_("blk: isr ");
        put_dec(r8(d.isr));
        putc_('\n');
    }

    if (blk_request(&q, 0, 0, BLK_DATA, 512, 1) != 0) fail("blk: read sector 0");
    puts_("blk: sector0 ");
    for (int i = 0; i < 16; ++i) {
        uint8_t c = r8(BLK_DATA + i);
        putc_(c >= 0x20 && c < 0x7f ? (char)c : '.');
    }
    puts_(" hash 0x");
    put_hex(hash_bytes(BLK_DATA, 512), 8);
    putc_('\n');

    for (uint32_t i = 0; i < 4096; ++i)
        w8(BLK_DATA + i, (uint8_t)(i * 7 + (i >> 9)));
    uint8_t s = blk_request(&q, 1, 8, BLK_DATA, 4096, 0);
    if (s != 0) fail("blk: write");
    if (blk_request(&q, 4, 0, 0, 0, 0) != 0) fail("blk: flush");
    memset((void*)(uintptr_t)BLK_DATA, 0, 4096);
    if (blk_request(&q, 0, 8, BLK_DATA, 4096, 1) != 0) fail("blk: read back");
    for (uint32_t i = 0; i < 4096; ++i)
        if (r8(BLK_DATA + i) != (uint8_t)(i * 7 + (i >> 9))) fail("blk: read back differs");
    puts_("blk: write+flush+read ok\n");

    uint64_t cap = r32(d.device) | ((uint64_t)r32(d.device + 4) << 32);
    puts_("blk: read past end status ");
    put_dec(blk_request(&q, 0, cap, BLK_DATA, 512, 1));
    putc_('\n');

    if (use_msix) {
        while (irq_count == 0)
            cpu_relax();
        puts_("blk: msix interrupts ");
        put_dec(irq_count > 0);
        putc_('\n');
    }
}

static void run_reset_io(void) {
    struct vdev d = {0};
    struct vq q;
    if (!find_virtio(0x1042, &d)) fail("no virtio-blk");
    if (!virtio_negotiate(&d, 0)) fail("blk: feature negotiation");
    vq_setup(&d, &q, 0, 16, PAGE(0), 0xffff);
    w8(d.common + C_STATUS, 3 | 8 | 4);
    /* A 32 KiB read in flight, then reset at once. */
    w32(BLK_HDR, 0);
    w64(BLK_HDR + 8, 0);
    vq_desc(&q, 0, BLK_HDR, 16, 1, 1);
    vq_desc(&q, 1, BLK_DATA, 32768, 3, 2);
    vq_desc(&q, 2, BLK_STATUS, 1, 2, 0);
    vq_publish(&q, 0);
    w8(d.common + C_STATUS, 0);
    while (r8(d.common + C_STATUS) != 0)
        cpu_relax();
    puts_("reset: status 0\n");
    if (!virtio_negotiate(&d, 0)) fail("blk: renegotiation");
    vq_setup(&d, &q, 0, 16, PAGE(0), 0xffff);
    w8(d.common + C_STATUS, 3 | 8 | 4);
    if (blk_request(&q, 0, 0, BLK_DATA, 512, 1) != 0) fail("blk: read after reset");
    puts_("reset: device works again\n");
}

/* ---- virtio-blk with many requests in flight, round after round ---- */
#define LOOP_REQS 8
#define LOOP_LEN (64u * 1024)
#define LOOP_SECTOR 1024   /* first sector written: 512 KiB into the disk */
#define LOOP_HDR PAGE(48)  /* 16-byte headers, then the status bytes at +512 */
#define LOOP_DATA PAGE(64) /* LOOP_REQS buffers of LOOP_LEN */

static uint64_t loop_buf(uint32_t k) {
    return LOOP_DATA + (uint64_t)k * LOOP_LEN;
}
static uint64_t loop_tag(uint64_t round, uint32_t k) {
    return (round << 8) ^ 0x5a5a000000000000ull ^ k;
}

/* Posts LOOP_REQS requests of `type` (0 in, 1 out) at once, one notification, and waits for
 * all of them; fails on a lost, repeated or failed completion. */
static void loop_batch(struct vq* q, uint32_t type) {
    for (uint32_t k = 0; k < LOOP_REQS; ++k) {
        uint64_t hdr = LOOP_HDR + 16ull * k;
        w32(hdr, type);
        w32(hdr + 4, 0);
        w64(hdr + 8, LOOP_SECTOR + (uint64_t)k * (LOOP_LEN / 512));
        w8(LOOP_HDR + 512 + k, 0xee);
        uint16_t d = (uint16_t)(3 * k);
        vq_desc(q, d, hdr, 16, 1, (uint16_t)(d + 1));
        vq_desc(q, (uint16_t)(d + 1), loop_buf(k), LOOP_LEN, (uint16_t)(1 | (type == 0 ? 2 : 0)),
                (uint16_t)(d + 2));
        vq_desc(q, (uint16_t)(d + 2), LOOP_HDR + 512 + k, 1, 2, 0);
        w16(q->avail + 4 + 2ull * ((q->avail_idx + k) % q->size), d);
    }
    barrier();
    q->avail_idx = (uint16_t)(q->avail_idx + LOOP_REQS);
    w16(q->avail + 2, q->avail_idx);
    barrier();
    w16(q->notify, q->index);
    uint32_t seen = 0;
    for (uint32_t n = 0; n < LOOP_REQS; ++n) {
        uint16_t id;
        vq_wait(q, &id);
        if (id % 3 != 0 || id / 3 >= LOOP_REQS) fail("blk-loop: used entry with a foreign id");
        if (seen & (1u << (id / 3))) fail("blk-loop: request completed twice");
        seen |= 1u << (id / 3);
        if (r8(LOOP_HDR + 512 + id / 3) != 0) fail("blk-loop: request failed");
    }
}

static void run_blk_loop(void) {
    struct vdev d = {0};
    struct vq q;
    if (!find_virtio(0x1042, &d)) fail("no virtio-blk");
    if (!virtio_negotiate(&d, 1u << 9 /* FLUSH */)) fail("blk-loop: feature negotiation");
    vq_setup(&d, &q, 0, 32, PAGE(0), 0xffff);
    if (q.size < 3 * LOOP_REQS) fail("blk-loop: queue too small");
    w8(d.common + C_STATUS, 3 | 8 | 4);
    for (uint32_t k = 0; k < LOOP_REQS; ++k)
        memset((void*)(uintptr_t)loop_buf(k), (int)(0x30 + k), LOOP_LEN);
    for (uint64_t round = 1;; ++round) {
        /* Each buffer: a tag at both ends that says which round and request wrote it. */
        for (uint32_t k = 0; k < LOOP_REQS; ++k) {
            w64(loop_buf(k), loop_tag(round, k));
            w64(loop_buf(k) + LOOP_LEN - 8, ~loop_tag(round, k));
        }
        loop_batch(&q, 1);
        if (blk_request(&q, 4, 0, 0, 0, 0) != 0) fail("blk-loop: flush");
        for (uint32_t k = 0; k < LOOP_REQS; ++k) {
            w64(loop_buf(k), 0);
            w64(loop_buf(k) + LOOP_LEN - 8, 0);
            w8(loop_buf(k) + LOOP_LEN / 2, 0);
        }
        loop_batch(&q, 0);
        for (uint32_t k = 0; k < LOOP_REQS; ++k) {
            if (r64(loop_buf(k)) != loop_tag(round, k) ||
                r64(loop_buf(k) + LOOP_LEN - 8) != ~loop_tag(round, k) ||
                r8(loop_buf(k) + LOOP_LEN / 2) != 0x30 + k)
                fail("blk-loop: read back differs from what was written");
        }
        puts_("blk-loop: round ");
        put_dec(round);
        puts_(" ok\n");
    }
}

/* ---- virtio-net ---- */
#define NET_RX_BUF PAGE(32) /* 8 buffers of 2 KiB */
#define NET_TX_BUF PAGE(40)

static void run_net(void) {
    struct vdev d = {0};
    struct vq rx, tx;
    if (!find_virtio(0x1041, &d)) fail("no virtio-net");
    if (!virtio_negotiate(&d, 1u << 5 /* MAC */)) fail("net: feature negotiation");
    vq_setup(&d, &rx, 0, 16, PAGE(0), 0xffff);
    vq_setup(&d, &tx, 1, 16, PAGE(4), 0xffff);
    for (uint16_t i = 0; i < 8; ++i) {
        vq_desc(&rx, i, NET_RX_BUF + 2048ull * i, 2048, 2, 0);
        w16(rx.avail + 4 + 2ull * i, i);
    }
    rx.avail_idx = 8;
    w16(rx.avail + 2, 8);
    w8(d.common + C_STATUS, 3 | 8 | 4);
    uint8_t mac[6];
    puts_("net: mac ");
    for (int i = 0; i < 6; ++i) {
        mac[i] = r8(d.device + i);
        put_hex(mac[i], 2);
        if (i < 5) putc_(':');
    }
    putc_('\n');

    /* virtio_net_hdr (12 bytes, all zero) + broadcast frame of type 0x88b5. */
    static const char payload[] = "vireo-guest-frame";
    uint64_t f = NET_TX_BUF;
    memset((void*)(uintptr_t)f, 0, 12 + 14 + 64);
    for (int i = 0; i < 6; ++i) {
        w8(f + 12 + i, 0xff);
        w8(f + 12 + 6 + i, mac[i]);
    }
    w8(f + 12 + 12, 0x88);
    w8(f + 12 + 13, 0xb5);
    for (size_t i = 0; i < sizeof payload; ++i)
        w8(f + 12 + 14 + i, (uint8_t)payload[i]);
    vq_desc(&tx, 0, f, 12 + 14 + 64, 0, 0);
    vq_publish(&tx, 0);
    vq_wait(&tx, 0);
    puts_("net: sent\n");

    for (;;) {
        uint16_t id;
        uint32_t len = vq_wait(&rx, &id);
        uint64_t b = NET_RX_BUF + 2048ull * id;
        if (len >= 12 + 14 && r8(b + 12 + 12) == 0x88 && r8(b + 12 + 13) == 0xb5) {
            puts_("net: received ");
            for (uint32_t i = 12 + 14; i < len && r8(b + i) >= 0x20 && r8(b + i) < 0x7f; ++i)
                putc_((char)r8(b + i));
            puts_(" num_buffers ");
            put_dec(r16(b + 10));
            putc_('\n');
            break;
        }
        /* Something else the host sent (IPv6 neighbour discovery...): give the buffer back. */
        w16(rx.avail + 4 + 2ull * (rx.avail_idx % rx.size), id);
        barrier();
        ++rx.avail_idx;
        w16(rx.avail + 2, rx.avail_idx);
        w16(rx.notify, 0);
    }
}

void guest_main(uint32_t boot, uintptr_t info) {
    (void)boot;
    puts_("virtio-guest\n");
    uint64_t cmd = r64(info + 24);
    size_t i = 0;
    if (cmd) {
        for (; i + 1 < sizeof cmdline && r8(cmd + i); ++i)
            cmdline[i] = (char)r8(cmd + i);
    }
    cmdline[i] = 0;
    if (has_word("pci")) list_pci();
    if (has_word("msix")) setup_interrupts();
    if (has_word("blk")) run_blk(has_word("msix"));
    if (has_word("reset-io")) run_reset_io();
    if (has_word("blk-loop")) run_blk_loop();
    if (has_word("net")) run_net();
    puts_("virtio-guest: done\n");
    poweroff();
}
