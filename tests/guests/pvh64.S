/* ELF64 PVH guest entry: entered like pvh32 (32-bit, paging off, %ebx = hvm_start_info), it
 * switches to long mode on its own page tables (4 GiB identity-mapped, so the local APIC is
 * reachable) and calls the 64-bit guest_main. */
    .section .note.pvh, "a"
    .balign 4
    .long 4
    .long 4
    .long 18                /* XEN_ELFNOTE_PHYS32_ENTRY */
    .asciz "Xen"
    .long _start

    .section .text.entry, "ax"
    .code32
    .globl _start
_start:
    movl $pml4, %eax
    movl %eax, %cr3
    movl %cr4, %eax
    orl $0x20, %eax         /* PAE */
    movl %eax, %cr4
    movl $0xC0000080, %ecx  /* EFER */
    rdmsr
    orl $0x100, %eax        /* LME */
    wrmsr
    movl %cr0, %eax
    orl $0x80000001, %eax   /* PG | PE */
    movl %eax, %cr0
    lgdt gdt_desc
    ljmp $0x08, $start64

    .code64
start64:
    movw $0x10, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %ss
    movq $stack_top, %rsp
    movl $2, %edi           /* GUEST_PVH64 */
    movl %ebx, %esi         /* hvm_start_info */
    call guest_main
1:  cli
    hlt
    jmp 1b

    .section .data
    .balign 4096
pml4:
    .quad pdpt + 3
    .fill 511, 8, 0
pdpt:
    .quad pd + 3, pd + 0x1003, pd + 0x2003, pd + 0x3003
    .fill 508, 8, 0
pd:
    .set page, 0
    .rept 2048
    .quad (page << 21) | 0x83   /* present, writable, 2 MiB */
    .set page, page + 1
    .endr
gdt:
    .quad 0
    .quad 0x00af9a000000ffff    /* 0x08: 64-bit code */
    .quad 0x00cf92000000ffff    /* 0x10: data */
gdt_desc:
    .word 23
    .long gdt
    .balign 16
stack:
    .skip 8192
stack_top:
    .section .note.GNU-stack, "", @progbits
