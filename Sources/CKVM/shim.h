/*
 * The KVM ioctls the DWCP VMM uses, as plain C functions Swift can call: the ioctl request numbers
 * are function-like macros and several structures end in flexible arrays, neither of which Swift
 * imports. Every function returns what ioctl(2) returns (-1 with errno set on failure) unless its
 * comment says otherwise.
 */
#ifndef DWCP_CKVM_SHIM_H
#define DWCP_CKVM_SHIM_H

#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

static inline int ckvm_get_api_version(int kvm) { return ioctl(kvm, KVM_GET_API_VERSION, 0); }
static inline int ckvm_check_extension(int fd, long extension) { return ioctl(fd, KVM_CHECK_EXTENSION, extension); }
static inline int ckvm_get_vcpu_mmap_size(int kvm) { return ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0); }
static inline int ckvm_create_vm(int kvm) { return ioctl(kvm, KVM_CREATE_VM, 0); }
static inline int ckvm_set_tss_addr(int vm, unsigned long address) { return ioctl(vm, KVM_SET_TSS_ADDR, address); }
static inline int ckvm_create_vcpu(int vm, int id) { return ioctl(vm, KVM_CREATE_VCPU, id); }

static inline int ckvm_set_user_memory_region(int vm, uint32_t slot, uint64_t guest_address, uint64_t size,
                                              void *host_address) {
    struct kvm_userspace_memory_region region = {
        .slot = slot, .flags = 0, .guest_phys_addr = guest_address, .memory_size = size,
        .userspace_addr = (uint64_t)(uintptr_t)host_address,
    };
    return ioctl(vm, KVM_SET_USER_MEMORY_REGION, &region);
}

static inline int ckvm_run(int vcpu) { return ioctl(vcpu, KVM_RUN, 0); }
static inline int ckvm_get_regs(int vcpu, struct kvm_regs *regs) { return ioctl(vcpu, KVM_GET_REGS, regs); }
static inline int ckvm_set_regs(int vcpu, const struct kvm_regs *regs) { return ioctl(vcpu, KVM_SET_REGS, regs); }
static inline int ckvm_get_sregs(int vcpu, struct kvm_sregs *sregs) { return ioctl(vcpu, KVM_GET_SREGS, sregs); }
static inline int ckvm_set_sregs(int vcpu, const struct kvm_sregs *sregs) { return ioctl(vcpu, KVM_SET_SREGS, sregs); }
static inline int ckvm_get_fpu(int vcpu, struct kvm_fpu *fpu) { return ioctl(vcpu, KVM_GET_FPU, fpu); }
static inline int ckvm_set_fpu(int vcpu, const struct kvm_fpu *fpu) { return ioctl(vcpu, KVM_SET_FPU, fpu); }
static inline int ckvm_get_xsave(int vcpu, struct kvm_xsave *xsave) { return ioctl(vcpu, KVM_GET_XSAVE, xsave); }
static inline int ckvm_set_xsave(int vcpu, const struct kvm_xsave *xsave) { return ioctl(vcpu, KVM_SET_XSAVE, xsave); }
static inline int ckvm_get_xcrs(int vcpu, struct kvm_xcrs *xcrs) { return ioctl(vcpu, KVM_GET_XCRS, xcrs); }
static inline int ckvm_set_xcrs(int vcpu, const struct kvm_xcrs *xcrs) { return ioctl(vcpu, KVM_SET_XCRS, xcrs); }
static inline int ckvm_get_vcpu_events(int vcpu, struct kvm_vcpu_events *events) {
    return ioctl(vcpu, KVM_GET_VCPU_EVENTS, events);
}
static inline int ckvm_set_vcpu_events(int vcpu, const struct kvm_vcpu_events *events) {
    return ioctl(vcpu, KVM_SET_VCPU_EVENTS, events);
}

/* The exit reason and the fields of the exits the VMM handles, read from the shared kvm_run page. */
static inline uint32_t ckvm_exit_reason(const struct kvm_run *run) { return run->exit_reason; }
static inline void ckvm_set_immediate_exit(struct kvm_run *run, uint8_t value) {
    __atomic_store_n(&run->immediate_exit, value, __ATOMIC_SEQ_CST);
}
static inline uint8_t ckvm_io_direction(const struct kvm_run *run) { return run->io.direction; }
static inline uint8_t ckvm_io_size(const struct kvm_run *run) { return run->io.size; }
static inline uint16_t ckvm_io_port(const struct kvm_run *run) { return run->io.port; }
static inline uint32_t ckvm_io_count(const struct kvm_run *run) { return run->io.count; }
static inline uint8_t *ckvm_io_data(struct kvm_run *run) { return (uint8_t *)run + run->io.data_offset; }
static inline uint64_t ckvm_mmio_address(const struct kvm_run *run) { return run->mmio.phys_addr; }
static inline uint8_t ckvm_mmio_is_write(const struct kvm_run *run) { return run->mmio.is_write; }
static inline uint32_t ckvm_mmio_length(const struct kvm_run *run) { return run->mmio.len; }
static inline uint8_t *ckvm_mmio_data(struct kvm_run *run) { return run->mmio.data; }
static inline uint64_t ckvm_fail_entry_reason(const struct kvm_run *run) {
    return run->fail_entry.hardware_entry_failure_reason;
}
static inline uint32_t ckvm_internal_suberror(const struct kvm_run *run) { return run->internal.suberror; }

/* Exit reasons, as constants Swift can import. */
enum {
    CKVM_EXIT_IO = KVM_EXIT_IO,
    CKVM_EXIT_HLT = KVM_EXIT_HLT,
    CKVM_EXIT_MMIO = KVM_EXIT_MMIO,
    CKVM_EXIT_SHUTDOWN = KVM_EXIT_SHUTDOWN,
    CKVM_EXIT_FAIL_ENTRY = KVM_EXIT_FAIL_ENTRY,
    CKVM_EXIT_INTERNAL_ERROR = KVM_EXIT_INTERNAL_ERROR,
    CKVM_EXIT_INTR = KVM_EXIT_INTR,
    CKVM_EXIT_IO_OUT = KVM_EXIT_IO_OUT,
    CKVM_CAP_USER_MEMORY = KVM_CAP_USER_MEMORY,
    CKVM_CAP_IMMEDIATE_EXIT = KVM_CAP_IMMEDIATE_EXIT,
    CKVM_CAP_XSAVE = KVM_CAP_XSAVE,
    CKVM_CAP_XCRS = KVM_CAP_XCRS,
    CKVM_CAP_NR_VCPUS = KVM_CAP_NR_VCPUS,
};

/*
 * Reads the CPUID leaves KVM supports on this host into a heap buffer (free with free()) and
 * returns it, or NULL with errno set.
 */
static inline struct kvm_cpuid2 *ckvm_supported_cpuid(int kvm) {
    int count = 128;
    for (;;) {
        struct kvm_cpuid2 *cpuid = calloc(1, sizeof(*cpuid) + (size_t)count * sizeof(struct kvm_cpuid_entry2));
        if (!cpuid) return NULL;
        cpuid->nent = (uint32_t)count;
        if (ioctl(kvm, KVM_GET_SUPPORTED_CPUID, cpuid) == 0) return cpuid;
        int saved = errno;
        free(cpuid);
        if (saved != E2BIG || count >= 4096) {
            errno = saved;
            return NULL;
        }
        count *= 2;
    }
}

/* Gives a vCPU the CPUID leaves (from ckvm_supported_cpuid), with its APIC id set to `vcpu_id`. */
static inline int ckvm_set_cpuid(int vcpu, const struct kvm_cpuid2 *supported, uint32_t vcpu_id) {
    size_t size = sizeof(*supported) + supported->nent * sizeof(struct kvm_cpuid_entry2);
    struct kvm_cpuid2 *cpuid = malloc(size);
    if (!cpuid) return -1;
    memcpy(cpuid, supported, size);
    for (uint32_t i = 0; i < cpuid->nent; i++) {
        if (cpuid->entries[i].function == 1) {
            cpuid->entries[i].ebx = (cpuid->entries[i].ebx & 0x00ffffffu) | (vcpu_id << 24);
        }
    }
    int result = ioctl(vcpu, KVM_SET_CPUID2, cpuid);
    int saved = errno;
    free(cpuid);
    errno = saved;
    return result;
}

/* Reads `count` MSRs; returns how many were read (ioctl's answer), or -1. */
static inline int ckvm_get_msrs(int vcpu, uint32_t count, const uint32_t *indices, uint64_t *values) {
    struct kvm_msrs *msrs = calloc(1, sizeof(*msrs) + count * sizeof(struct kvm_msr_entry));
    if (!msrs) return -1;
    msrs->nmsrs = count;
    for (uint32_t i = 0; i < count; i++) msrs->entries[i].index = indices[i];
    int result = ioctl(vcpu, KVM_GET_MSRS, msrs);
    for (uint32_t i = 0; result > 0 && i < (uint32_t)result; i++) values[i] = msrs->entries[i].data;
    int saved = errno;
    free(msrs);
    errno = saved;
    return result;
}

/* Writes `count` MSRs; returns how many were written, or -1. */
static inline int ckvm_set_msrs(int vcpu, uint32_t count, const uint32_t *indices, const uint64_t *values) {
    struct kvm_msrs *msrs = calloc(1, sizeof(*msrs) + count * sizeof(struct kvm_msr_entry));
    if (!msrs) return -1;
    msrs->nmsrs = count;
    for (uint32_t i = 0; i < count; i++) {
        msrs->entries[i].index = indices[i];
        msrs->entries[i].data = values[i];
    }
    int result = ioctl(vcpu, KVM_SET_MSRS, msrs);
    int saved = errno;
    free(msrs);
    errno = saved;
    return result;
}

/* The signal that kicks a vCPU thread out of KVM_RUN: a handler that does nothing, installed without
 * SA_RESTART so the ioctl returns EINTR. */
static void ckvm_kick_handler(int signal) { (void)signal; }
static inline int ckvm_install_kick_handler(int signal) {
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = ckvm_kick_handler;
    sigemptyset(&action.sa_mask);
    return sigaction(signal, &action, NULL);
}
static inline int ckvm_kick(pthread_t thread, int signal) { return pthread_kill(thread, signal); }
/* Unblocks `signal` on the calling thread: a thread inherits its creator's mask, and Dispatch's
   worker threads (Swift's default executor) block every signal they can. */
static inline int ckvm_unblock_signal(int signal) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, signal);
    return pthread_sigmask(SIG_UNBLOCK, &set, NULL);
}

/* mmap(2) wrappers: MAP_FAILED becomes NULL. */
static inline void *ckvm_map_anonymous(size_t size) {
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}
static inline void *ckvm_map_file_private(int fd, size_t size) {
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_NORESERVE, fd, 0);
    return p == MAP_FAILED ? NULL : p;
}
static inline void *ckvm_map_shared(int fd, size_t size) {
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    return p == MAP_FAILED ? NULL : p;
}

/* Whether two descriptors of this process refer to the same open file: 1 yes, 0 no, -1 unknown
   (kcmp(2) unavailable). A test tells a descriptor its VM closed from one another test opened
   under the same number since. */
static inline int ckvm_same_file(int fd1, int fd2) {
    pid_t pid = getpid();
    long result = syscall(SYS_kcmp, pid, pid, 0 /* KCMP_FILE */, fd1, fd2);
    return result < 0 ? -1 : result == 0;
}

#endif
