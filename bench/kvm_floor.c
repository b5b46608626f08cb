/* The kernel's share of a VM's life: the KVM calls any VMM with an in-kernel irqchip and PIT
 * makes to run a guest that exits at once (create the VM, one memory slot, irqchip, PIT, one
 * vCPU, run it to its first exit, close), in the cheapest order known: the memory slot before
 * the irqchip and PIT, PIT tick reinjection left as KVM makes it (leaving it waits for two SRCU
 * grace periods), and the last close of the VM, which destroys it and waits for those grace
 * periods anyway, handed to a child process so it runs after this one has exited (see vireo's
 * Vm::build_kvm and kvm/teardown.hpp). bench/startup.sh runs it beside both VMMs, so the time
 * each VMM spends above this floor can be compared too. Not part of Vireo. */
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

int main(void) {
    int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (kvm < 0) return 1;
    int vm = ioctl(kvm, KVM_CREATE_VM, 0);
    if (vm < 0) return 1;
    size_t size = 128 << 20;
    unsigned char* mem = mmap(0, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    struct kvm_userspace_memory_region region = {0, 0, 0, size, (unsigned long)mem};
    if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &region) < 0) return 1;
    ioctl(vm, KVM_SET_IDENTITY_MAP_ADDR, &(unsigned long long){0xfffbc000});
    ioctl(vm, KVM_SET_TSS_ADDR, 0xfffbd000);
    if (ioctl(vm, KVM_CREATE_IRQCHIP, 0) < 0) return 1;
    struct kvm_pit_config pit;
    memset(&pit, 0, sizeof pit);
    pit.flags = KVM_PIT_SPEAKER_DUMMY;
    if (ioctl(vm, KVM_CREATE_PIT2, &pit) < 0) return 1;
    int vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
    int run_size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
    struct kvm_run* run = mmap(0, run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
    /* Real mode at 0x1000: out 0x80, al — the first exit ends the run. */
    static const unsigned char code[] = {0xe6, 0x80, 0xf4};
    memcpy(mem + 0x1000, code, sizeof code);
    struct kvm_sregs sregs;
    ioctl(vcpu, KVM_GET_SREGS, &sregs);
    sregs.cs.base = 0;
    sregs.cs.selector = 0;
    ioctl(vcpu, KVM_SET_SREGS, &sregs);
    struct kvm_regs regs;
    memset(&regs, 0, sizeof regs);
    regs.rip = 0x1000;
    regs.rflags = 2;
    ioctl(vcpu, KVM_SET_REGS, &regs);
    if (ioctl(vcpu, KVM_RUN, 0) < 0 || run->exit_reason != KVM_EXIT_IO) return 2;
    munmap(run, run_size);
    close(vcpu);
    close(kvm);
    /* The child keeps the VM until this process has closed its copy, then drops the last one. */
    int release[2];
    if (pipe(release) < 0) return 1;
    pid_t child = fork();
    if (child == 0) {
        char byte;
        close(release[1]);
        while (read(release[0], &byte, 1) > 0) {
        }
        _exit(0);
    }
    close(release[0]);
    close(vm);
    close(release[1]);
    return child < 0;
}
