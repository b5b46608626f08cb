#include "kvm/teardown.hpp"

#include <fcntl.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <climits>

namespace vireo::kvm {
namespace {

// In the child, after fork: only async-signal-safe calls. Closes every descriptor except the
// two kept ones; false when the kernel cannot (close_range is Linux 5.9+).
bool close_all_but(int a, int b) {
    std::array<int, 2> keep{std::min(a, b), std::max(a, b)};
    unsigned first = 0;
    for (int fd : keep) {
        if (static_cast<unsigned>(fd) > first && ::close_range(first, static_cast<unsigned>(fd) - 1, 0) < 0)
            return false;
        first = static_cast<unsigned>(fd) + 1;
    }
    return ::close_range(first, UINT_MAX, 0) == 0;
}

void read_until_eof(int fd) {
    char byte;
    for (;;) {
        ssize_t n = ::read(fd, &byte, 1);
        if (n == 0 || (n < 0 && errno != EINTR)) return;
    }
}

}  // namespace

Status hand_off_teardown(UniqueFd vm_file) {
    if (!vm_file) return Error("teardown: no VM file to hand off");
    // `ready` reaches end-of-file once the child has closed everything but the VM file;
    // `release` once this process has dropped its own reference, so the child's is the last.
    int ready[2];
    int release[2];
    if (::pipe2(ready, O_CLOEXEC) < 0) return os_error("teardown: pipe");
    UniqueFd ready_read(ready[0]), ready_write(ready[1]);
    if (::pipe2(release, O_CLOEXEC) < 0) return os_error("teardown: pipe");
    UniqueFd release_read(release[0]), release_write(release[1]);

    pid_t pid = ::fork();
    if (pid < 0) return os_error("teardown: fork");
    if (pid == 0) {
        // Exiting at once on failure closes every copy too: this process then sees `ready`
        // end only after that, and its own close becomes the last (the ordinary teardown).
        if (!close_all_but(vm_file.get(), release_read.get())) ::_exit(127);
        ::prctl(PR_SET_NAME, "vireo-teardown", 0, 0, 0);
        read_until_eof(release_read.get());
        ::_exit(0);  // drops the last reference to the VM: KVM tears it down in this process
    }
    ready_write.reset();
    release_read.reset();
    read_until_eof(ready_read.get());
    vm_file.reset();
    release_write.reset();
    return {};
}

}  // namespace vireo::kvm
