/* ELF64 "vmlinux" guest entry: no PVH note, so the VMM enters e_entry in 64-bit mode on its own
 * identity page tables with %rsi pointing at boot_params (Linux 64-bit boot protocol). */
    .section .text.entry, "ax"
    .code64
    .globl _start
_start:
    movq $stack_top, %rsp
    movl $3, %edi           /* GUEST_VMLINUX; %rsi already holds boot_params */
    call guest_main
1:  cli
    hlt
    jmp 1b

    .section .data
    .balign 16
stack:
    .skip 8192
stack_top:
    .section .note.GNU-stack, "", @progbits
