/* The bzImage guest's real-mode part: a boot sector and one setup sector carrying a Linux
 * setup header (boot protocol 2.15, LOADED_HIGH, XLF_KERNEL_64), followed by the flat
 * protected-mode payload (bzimage_entry.S + guest.c linked at 1 MiB). Field offsets follow
 * Documentation/arch/x86/boot.rst. */
    .code16
    .section .text, "ax"
    .globl _start
_start:
    .org 0x1f1
    .byte 1                         /* 0x1f1 setup_sects */
    .word 0                         /* 0x1f2 root_flags */
    .long (payload_end - payload_start + 15) / 16  /* 0x1f4 syssize */
    .word 0                         /* 0x1f8 ram_size */
    .word 0xffff                    /* 0x1fa vid_mode */
    .word 0                         /* 0x1fc root_dev */
    .word 0xaa55                    /* 0x1fe boot_flag */
    .byte 0xeb, 0x6a                /* 0x200 jump: 0x202 + 0x6a is the header's end */
    .ascii "HdrS"                   /* 0x202 header */
    .word 0x020f                    /* 0x206 version 2.15 */
    .long 0                         /* 0x208 realmode_swtch */
    .word 0x1000                    /* 0x20c start_sys_seg */
    .word version_string - 0x200    /* 0x20e kernel_version */
    .byte 0                         /* 0x210 type_of_loader */
    .byte 0x01                      /* 0x211 loadflags: LOADED_HIGH */
    .word 0x8000                    /* 0x212 setup_move_size */
    .long 0x100000                  /* 0x214 code32_start */
    .long 0                         /* 0x218 ramdisk_image */
    .long 0                         /* 0x21c ramdisk_size */
    .long 0                         /* 0x220 bootsect_kludge */
    .word 0                         /* 0x224 heap_end_ptr */
    .byte 0                         /* 0x226 ext_loader_ver */
    .byte 0                         /* 0x227 ext_loader_type */
    .long 0                         /* 0x228 cmd_line_ptr */
    .long 0x7fffffff                /* 0x22c initrd_addr_max */
    .long 0x200000                  /* 0x230 kernel_alignment */
    .byte 0                         /* 0x234 relocatable_kernel */
    .byte 0                         /* 0x235 min_alignment */
    .word 0x0001                    /* 0x236 xloadflags: XLF_KERNEL_64 */
    .long 2047                      /* 0x238 cmdline_size */
    .long 0                         /* 0x23c hardware_subarch */
    .quad 0                         /* 0x240 hardware_subarch_data */
    .long 0                         /* 0x248 payload_offset */
    .long 0                         /* 0x24c payload_length */
    .quad 0                         /* 0x250 setup_data */
    .quad 0x100000                  /* 0x258 pref_address */
    .long payload_end - payload_start + 0x10000  /* 0x260 init_size */
    .long 0                         /* 0x264 handover_offset */
    .long 0                         /* 0x268 kernel_info_offset */
version_string:
    .asciz "vireo-test-guest 1.0"
    .org 1024                       /* boot sector + 1 setup sector */
payload_start:
    .incbin PAYLOAD
payload_end:
    .section .note.GNU-stack, "", @progbits
