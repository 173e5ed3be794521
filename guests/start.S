/*
 * Entry points of every DWCP guest.
 *
 * start64: the DWCP VMM enters here in 64-bit long mode (its own page tables and GDT), with
 *          rdi = the guest address of the boot parameters (struct boot_params in guest.h).
 * pvh_start: 32-bit protected-mode entry named by the Xen PVH ELF note, so that QEMU's microvm
 *          machine boots the same file (the benchmark's anchor); it builds an identity map of
 *          the first GiB, enters long mode itself and continues at start64 with rdi = 0.
 */
#define XEN_ELFNOTE_PHYS32_ENTRY 18

    .section .note.Xen, "a", @note
    .balign 4
    .long 4                         /* name size: "Xen\0" */
    .long 4                         /* descriptor size */
    .long XEN_ELFNOTE_PHYS32_ENTRY
    .asciz "Xen"
    .long pvh_start

    .section .text.boot, "ax"
    .code64
    .globl start64
start64:
    lea stack_top(%rip), %rsp
    xor %ebp, %ebp
    call guest_entry
1:  cli
    hlt
    jmp 1b

    .code32
    .globl pvh_start
pvh_start:
    cli
    lgdt pvh_gdt_descriptor
    mov %cr4, %eax
    or $0x20, %eax                  /* PAE */
    mov %eax, %cr4
    mov $pvh_pml4, %eax
    mov %eax, %cr3
    mov $0xC0000080, %ecx           /* EFER */
    rdmsr
    or $0x100, %eax                 /* LME */
    wrmsr
    mov %cr0, %eax
    or $0x80000001, %eax            /* PG | PE */
    mov %eax, %cr0
    ljmp $0x08, $pvh_long_mode

    .code64
pvh_long_mode:
    mov $0x10, %ax
    mov %ax, %ds
    mov %ax, %es
    mov %ax, %ss
    xor %edi, %edi
    jmp start64

    .section .data
    .balign 8
pvh_gdt:
    .quad 0
    .quad 0x00209a0000000000        /* 64-bit code */
    .quad 0x0000920000000000        /* data */
pvh_gdt_descriptor:
    .word pvh_gdt_descriptor - pvh_gdt - 1
    .long pvh_gdt

    .balign 4096
pvh_pml4:
    .quad pvh_pdpt + 0x3
    .fill 511, 8, 0
pvh_pdpt:
    .quad pvh_pd + 0x3
    .fill 511, 8, 0
pvh_pd:
    .set page, 0
    .rept 512
    .quad (page << 21) + 0x83       /* 2 MiB page, present, writable */
    .set page, page + 1
    .endr

    .section .bss
    .balign 16
    .space 65536
stack_top:
