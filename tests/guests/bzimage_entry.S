/* The protected-mode part of the bzImage guest, loaded at 1 MiB: startup_32 at +0 (unused: the
 * VMM uses the 64-bit entry) and startup_64 at +0x200, as in a Linux bzImage. */
    .section .text.startup32, "ax"
    .code32
    .globl startup_32
startup_32:
    cli
    hlt
    jmp startup_32

    .section .text.startup64, "ax"
    .code64
    .globl startup_64
startup_64:
    movq $stack_top, %rsp
    movl $4, %edi           /* GUEST_BZIMAGE; %rsi = boot_params */
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
