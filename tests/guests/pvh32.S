/* ELF32 PVH guest entry: the XEN_ELFNOTE_PHYS32_ENTRY note names _start, entered in 32-bit
 * protected mode with paging off and %ebx pointing at hvm_start_info. */
    .section .note.pvh, "a"
    .balign 4
    .long 4                 /* name size ("Xen\0") */
    .long 4                 /* descriptor size */
    .long 18                /* XEN_ELFNOTE_PHYS32_ENTRY */
    .asciz "Xen"
    .long _start

    .section .text.entry, "ax"
    .code32
    .globl _start
_start:
    movl $stack_top, %esp
    pushl %ebx              /* info */
    pushl $1                /* GUEST_PVH32 */
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
