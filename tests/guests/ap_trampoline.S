/* Where an application processor starts after INIT/SIPI: real mode at AP_TRAMPOLINE_ADDR. It
 * records its initial APIC ID (CPUID leaf 1) in the mailbox, counts itself in, and halts. */
    .section .rodata.ap, "a"
    .globl ap_trampoline_start
    .globl ap_trampoline_end
    .code16
ap_trampoline_start:
    cli
    xorw %ax, %ax
    movw %ax, %ds
    movl $1, %eax
    cpuid
    shrl $24, %ebx
    addr32 movl %ebx, 0x1804(,%ebx,4)
    lock incl 0x1800
1:  cli
    hlt
    jmp 1b
ap_trampoline_end:
    .section .note.GNU-stack, "", @progbits
