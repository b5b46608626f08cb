// kvm::hand_off_teardown without KVM: any file stands in for the VM's. The child must hold the
// handed file, and nothing else, until this process has dropped its own reference, then drop it
// and exit cleanly.
#include "kvm/teardown.hpp"

#include "kvm/kvm.hpp"

#include <gtest/gtest.h>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fcntl.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

namespace vireo::kvm {
namespace {

struct Pipe {
    UniqueFd read, write;
    Pipe() {
        int fds[2];
        EXPECT_EQ(::pipe2(fds, O_CLOEXEC), 0);
        read.reset(fds[0]);
        write.reset(fds[1]);
    }
};

// True when `fd` reports end-of-file (every write end closed) within `ms`.
bool eof_within(int fd, int ms) {
    pollfd p{.fd = fd, .events = POLLIN, .revents = 0};
    if (::poll(&p, 1, ms) != 1) return false;
    char byte;
    return ::read(fd, &byte, 1) == 0;
}

TEST(Teardown, ChildHoldsOnlyTheHandedFileAndDropsItAfterUs) {
    Pipe vm;     // its write end plays the VM file
    Pipe other;  // an unrelated descriptor of ours (a tap, a disk image, stdout...)
    UniqueFd handed(::fcntl(vm.write.get(), F_DUPFD_CLOEXEC, 0));
    ASSERT_TRUE(handed);
    vm.write.reset();  // the hand-off now holds the only reference in this process

    auto s = hand_off_teardown(std::move(handed));
    ASSERT_TRUE(s.ok()) << s.error().message();

    // When hand_off_teardown returns, the child has closed its copy of everything else.
    other.write.reset();
    EXPECT_TRUE(eof_within(other.read.get(), 0)) << "the teardown child still holds another descriptor";

    // The child drops the handed file (its last reference) and exits with status 0.
    int status = 0;
    pid_t pid = ::waitpid(-1, &status, 0);
    ASSERT_GT(pid, 0) << "no teardown child: " << std::strerror(errno);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "status " << status;
    EXPECT_TRUE(eof_within(vm.read.get(), 0)) << "the handed file outlived the teardown child";
}

TEST(Teardown, NothingToHandOffIsAnError) {
    auto s = hand_off_teardown(UniqueFd());
    ASSERT_FALSE(s.ok());
    EXPECT_NE(s.error().message().find("no VM file"), std::string::npos) << s.error().message();
}

TEST(HostHasAvic, ReadsTheKvmAmdParameter) {
    char dir[] = "/tmp/vireo-avic-XXXXXX";
    ASSERT_NE(::mkdtemp(dir), nullptr);
    std::string path = std::string(dir) + "/avic";
    auto with = [&](const char* text) {
        FILE* f = std::fopen(path.c_str(), "w");
        std::fputs(text, f);
        std::fclose(f);
        return host_has_avic(path);
    };
    EXPECT_TRUE(with("Y\n"));
    EXPECT_TRUE(with("1\n"));
    EXPECT_FALSE(with("N\n"));
    EXPECT_FALSE(with("0\n"));
    EXPECT_FALSE(with(""));
    ::unlink(path.c_str());
    ::rmdir(dir);
    EXPECT_FALSE(host_has_avic(path));  // no kvm_amd: an Intel host
}

}  // namespace
}  // namespace vireo::kvm
