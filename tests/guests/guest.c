/* The tiny test guests' common body: reports what the VMM handed over (boot protocol, CPU mode,
 * command line, memory map, initrd, RSDP), then does what the command line asks:
 *   rtc            print the CMOS date and time
 *   smp=N          start N-1 application processors with INIT/SIPI and report their APIC IDs
 *   echo           read one line from the serial port and print it back
 *   boottimer      write the boot-time marker (123 to 0xd0000000)
 *   probe          read an unclaimed port and unclaimed MMIO (several times)
 *   cpuid          print CPUID bits the VMM controls
 *   quiet          report nothing: go straight to the exit action (startup benchmarks)
 *   exit=ACTION    poweroff (ACPI PM1a, the default), reset-kbd (i8042 0xFE), reset-cf9,
 *                  triple (triple fault), hang (halt forever), spin (busy loop), jump-mmio
 *                  (execute from MMIO, which KVM cannot emulate)
 * Integer-only, freestanding, built for 32-bit and 64-bit. */
#include "guest.h"

#include <stddef.h>

#define COM1 0x3f8
#define LAPIC_BASE 0xfee00000u

static inline void outb(uint16_t port, uint8_t v) {
    __asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port));
}
static inline void outw(uint16_t port, uint16_t v) {
    __asm__ volatile("outw %0, %1" : : "a"(v), "Nd"(port));
}
static inline uint8_t inb(uint16_t port) {
    uint8_t v;
    __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
    return v;
}
static inline uint32_t mmio_read32(uintptr_t addr) {
    return *(volatile uint32_t*)addr;
}
static inline void mmio_write32(uintptr_t addr, uint32_t v) {
    *(volatile uint32_t*)addr = v;
}

/* gcc may emit calls to these even when freestanding. */
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
static void put_dec(uint32_t v) {
    char buf[12];
    int n = 0;
    do {
        buf[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n)
        putc_(buf[--n]);
}
static void put_dec2(uint32_t v) {
    putc_((char)('0' + v / 10 % 10));
    putc_((char)('0' + v % 10));
}

static uint32_t rd32(uint64_t addr) {
    return *(volatile uint32_t*)(uintptr_t)addr;
}
static uint64_t rd64(uint64_t addr) {
    return (uint64_t)rd32(addr) | ((uint64_t)rd32(addr + 4) << 32);
}
static uint8_t rd8(uint64_t addr) {
    return *(volatile uint8_t*)(uintptr_t)addr;
}

/* ---- command line ---- */
static char cmdline[512];

static int has_word(const char* word, const char** value) {
    const char* p = cmdline;
    while (*p) {
        while (*p == ' ')
            ++p;
        const char* w = word;
        const char* q = p;
        while (*w && *q == *w)
            ++q, ++w;
        if (!*w && (*q == ' ' || *q == 0 || *q == '=')) {
            if (value) *value = (*q == '=') ? q + 1 : q;
            return 1;
        }
        while (*p && *p != ' ')
            ++p;
    }
    return 0;
}
static int value_is(const char* value, const char* s) {
    while (*s && *value == *s)
        ++value, ++s;
    return !*s && (*value == ' ' || *value == 0);
}
static uint32_t value_num(const char* value) {
    uint32_t n = 0;
    while (*value >= '0' && *value <= '9')
        n = n * 10 + (uint32_t)(*value++ - '0');
    return n;
}

static void copy_cmdline(uint64_t addr) {
    size_t i = 0;
    if (addr != 0 && addr < 0x100000000ull) {
        for (; i + 1 < sizeof cmdline; ++i) {
            char c = (char)rd8(addr + i);
            if (!c) break;
            cmdline[i] = c;
        }
    }
    cmdline[i] = 0;
}

/* ---- boot information ---- */
static void print_e820(uint64_t addr, uint64_t size, uint32_t type) {
    puts_("e820: ");
    put_hex(addr, 16);
    putc_('-');
    put_hex(addr + size - 1, 16);
    putc_(' ');
    put_dec(type);
    putc_('\n');
}

static void print_initrd(uint64_t addr, uint64_t size) {
    uint32_t sum = 0;
    if (addr + size <= 0x100000000ull) {
        for (uint64_t i = 0; i < size; ++i)
            sum = sum * 31 + rd8(addr + i);
    }
    puts_("initrd: addr=0x");
    put_hex(addr, 8);
    puts_(" size=");
    put_dec((uint32_t)size);
    puts_(" hash=0x");
    put_hex(sum, 8);
    putc_('\n');
}

static void report_pvh(uintptr_t info) {
    if (rd32(info) != 0x336ec578u) {
        puts_("error: bad hvm_start_info magic\n");
        return;
    }
    puts_("pvh: version ");
    put_dec(rd32(info + 4));
    putc_('\n');
    copy_cmdline(rd64(info + 24));
    puts_("cmdline: ");
    puts_(cmdline);
    putc_('\n');
    uint64_t memmap = rd64(info + 40);
    uint32_t entries = rd32(info + 48);
    for (uint32_t i = 0; i < entries; ++i) {
        uint64_t e = memmap + 24ull * i;
        print_e820(rd64(e), rd64(e + 8), rd32(e + 16));
    }
    uint32_t modules = rd32(info + 12);
    if (modules > 0) {
        uint64_t mod = rd64(info + 16);
        print_initrd(rd64(mod), rd64(mod + 8));
    }
    puts_("rsdp: 0x");
    put_hex(rd64(info + 32), 8);
    putc_('\n');
}

static void report_linux(uintptr_t params) {
    puts_("linux: boot_flag 0x");
    put_hex(rd32(params + 0x1fe) & 0xffff, 4);
    puts_(" loader 0x");
    put_hex(rd8(params + 0x210), 2);
    putc_('\n');
    copy_cmdline(rd32(params + 0x228) | ((uint64_t)rd32(params + 0xc8) << 32));
    puts_("cmdline: ");
    puts_(cmdline);
    putc_('\n');
    uint32_t entries = rd8(params + 0x1e8);
    for (uint32_t i = 0; i < entries; ++i) {
        uint64_t e = params + 0x2d0 + 20ull * i;
        print_e820(rd64(e), rd64(e + 8), rd32(e + 16));
    }
    uint64_t initrd = rd32(params + 0x218) | ((uint64_t)rd32(params + 0xc0) << 32);
    uint64_t initrd_size = rd32(params + 0x21c) | ((uint64_t)rd32(params + 0xc4) << 32);
    if (initrd_size > 0) print_initrd(initrd, initrd_size);
    puts_("rsdp: 0x");
    put_hex(rd64(params + 0x70), 8);
    putc_('\n');
}

static void report_mode(void) {
    uintptr_t cr0;
    uint16_t cs;
    __asm__ volatile("mov %%cr0, %0" : "=r"(cr0));
    __asm__ volatile("mov %%cs, %0" : "=r"(cs));
#if defined(__x86_64__)
    uint32_t lo, hi;
    __asm__ volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(0xc0000080u));
    puts_((lo & 0x400) ? "mode: long" : "mode: not long");
#else
    puts_("mode: protected32");
#endif
    puts_((cr0 & 0x80000000u) ? " paging=on" : " paging=off");
    puts_(" cs=0x");
    put_hex(cs, 2);
    putc_('\n');
}

/* ---- actions ---- */
static uint8_t cmos(uint8_t reg) {
    outb(0x70, reg);
    return inb(0x71);
}
static uint32_t bcd(uint8_t v, int binary) {
    return binary ? v : (uint32_t)((v >> 4) * 10 + (v & 0xf));
}

static void report_rtc(void) {
    while (cmos(0x0a) & 0x80) {
    } /* update in progress */
    uint8_t sec = cmos(0x00), min = cmos(0x02), hour = cmos(0x04);
    uint8_t day = cmos(0x07), mon = cmos(0x08), year = cmos(0x09), century = cmos(0x32);
    int binary = cmos(0x0b) & 0x04;
    puts_("rtc: ");
    put_dec2(bcd(century, binary));
    put_dec2(bcd(year, binary));
    putc_('-');
    put_dec2(bcd(mon, binary));
    putc_('-');
    put_dec2(bcd(day, binary));
    putc_(' ');
    put_dec2(bcd(hour, binary));
    putc_(':');
    put_dec2(bcd(min, binary));
    putc_(':');
    put_dec2(bcd(sec, binary));
    putc_('\n');
}

static void lapic_ipi(uint32_t apic_id, uint32_t low) {
    mmio_write32(LAPIC_BASE + 0x310, apic_id << 24);
    mmio_write32(LAPIC_BASE + 0x300, low);
    while (mmio_read32(LAPIC_BASE + 0x300) & (1u << 12)) {
    } /* delivery pending */
}

static void start_aps(uint32_t cpus) {
    volatile uint32_t* mailbox = (volatile uint32_t*)(uintptr_t)AP_MAILBOX_ADDR;
    volatile uint8_t* tramp = (volatile uint8_t*)(uintptr_t)AP_TRAMPOLINE_ADDR;
    for (const uint8_t* p = ap_trampoline_start; p < ap_trampoline_end; ++p)
        *tramp++ = *p;
    mailbox[0] = 0;
    mmio_write32(LAPIC_BASE + 0xf0, 0x1ff); /* software-enable the LAPIC */
    puts_("smp: bsp apic id ");
    put_dec(mmio_read32(LAPIC_BASE + 0x20) >> 24);
    putc_('\n');
    for (uint32_t id = 1; id < cpus; ++id) {
        lapic_ipi(id, 0x4500);                              /* INIT, assert */
        lapic_ipi(id, 0x4600 | (AP_TRAMPOLINE_ADDR >> 12)); /* STARTUP */
        uint32_t spins = 0;
        while (mailbox[0] < id && spins < 20000000u) {
            __asm__ volatile("pause");
            ++spins;
        }
        if (mailbox[0] < id) {
            puts_("smp: cpu ");
            put_dec(id);
            puts_(" did not start\n");
            return;
        }
        puts_("smp: cpu ");
        put_dec(id);
        puts_(" up, apic id ");
        put_dec(mailbox[1 + id]);
        putc_('\n');
    }
    puts_("smp: ");
    put_dec(mailbox[0] + 1);
    puts_(" cpus\n");
}

static void probe_unclaimed(void) {
    uint32_t port = 0, mem = 0;
    for (int i = 0; i < 5; ++i) {
        uint32_t v;
        __asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"((uint16_t)0x510));
        port |= v;
        mem |= mmio_read32(0xc0000000u);
    }
    puts_("probe: port 0x");
    put_hex(port, 8);
    puts_(" mmio 0x");
    put_hex(mem, 8);
    putc_('\n');
}

static void cpuid(uint32_t leaf, uint32_t sub, uint32_t r[4]) {
    __asm__ volatile("cpuid" : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3]) : "a"(leaf), "c"(sub));
}

static void report_cpuid(void) {
    uint32_t r[4];
    cpuid(1, 0, r);
    puts_("cpuid: 1.ebx=0x");
    put_hex(r[1], 8);
    puts_(" 1.ecx=0x");
    put_hex(r[2], 8);
    cpuid(0x40000000u, 0, r);
    puts_(" hv=");
    for (int reg = 1; reg < 4; ++reg)
        for (int b = 0; b < 4; ++b) {
            char c = (char)(r[reg] >> (8 * b));
            if (c) putc_(c);
        }
    putc_('\n');
}

static void echo_line(void) {
    char line[80];
    size_t n = 0;
    puts_("echo: ready\n");
    for (;;) {
        while (!(inb(COM1 + 5) & 0x01)) {
        }
        char c = (char)inb(COM1);
        if (c == '\r' || c == '\n' || n + 1 == sizeof line) break;
        line[n++] = c;
    }
    line[n] = 0;
    puts_("echo: got ");
    puts_(line);
    putc_('\n');
}

static void __attribute__((noreturn)) halt_forever(void) {
    for (;;)
        __asm__ volatile("cli; hlt");
}

static void __attribute__((noreturn)) exit_action(const char* action);

void guest_main(uint32_t boot, uintptr_t info) {
    static const char* const names[] = {"?", "pvh32", "pvh64", "vmlinux", "bzimage"};
    const char* value;
    if (boot == GUEST_PVH32 || boot == GUEST_PVH64) {
        copy_cmdline(rd64(info + 24));
    } else {
        copy_cmdline(rd32(info + 0x228));
    }
    if (has_word("quiet", NULL)) exit_action(has_word("exit", &value) ? value : "poweroff");
    puts_("vireo-guest: ");
    puts_(names[boot < 5 ? boot : 0]);
    putc_('\n');
    report_mode();
    if (boot == GUEST_PVH32 || boot == GUEST_PVH64) {
        report_pvh(info);
    } else {
        report_linux(info);
    }

    if (has_word("rtc", NULL)) report_rtc();
    if (has_word("smp", &value)) start_aps(value_num(value));
    if (has_word("echo", NULL)) echo_line();
    if (has_word("probe", NULL)) probe_unclaimed();
    if (has_word("cpuid", NULL)) report_cpuid();
    if (has_word("boottimer", NULL)) {
        *(volatile uint8_t*)(uintptr_t)0xd0000000u = 123;
        puts_("boottimer: written\n");
    }

    const char* action = "poweroff";
    if (has_word("exit", &value)) action = value;
    puts_("exit: ");
    for (const char* p = action; *p && *p != ' '; ++p)
        putc_(*p);
    putc_('\n');
    exit_action(action);
}

static void __attribute__((noreturn)) exit_action(const char* action) {
    if (value_is(action, "poweroff")) {
        outw(0x604, (5 << 10) | (1 << 13)); /* PM1a_CNT: SLP_TYP = S5, SLP_EN */
    } else if (value_is(action, "reset-kbd")) {
        outb(0x64, 0xfe); /* i8042: pulse the reset line */
    } else if (value_is(action, "reset-cf9")) {
        outb(0xcf9, 0x06); /* reset control: SYS_RST | RST_CPU */
    } else if (value_is(action, "triple")) {
        struct __attribute__((packed)) {
            uint16_t limit;
            uintptr_t base;
        } idt = {0, 0};
        __asm__ volatile("lidt %0; ud2" : : "m"(idt));
    } else if (value_is(action, "jump-mmio")) {
        ((void (*)(void))(uintptr_t)0xc0000000u)();
    } else if (value_is(action, "spin")) {
        for (;;)
            __asm__ volatile("pause");
    }
    halt_forever();
}
