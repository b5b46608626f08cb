// ioeventfd registration.
#include "vmm/io_eventfd.hpp"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

namespace vireo::vmm {

Result<std::unique_ptr<IoEventFd>> IoEventFd::create(kvm::Vm& vm, EventLoop& loop, const Spec& spec,
                                                     std::function<void()> on_signal) {
    UniqueFd fd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (!fd) return os_error("ioeventfd: eventfd");
    std::unique_ptr<IoEventFd> io(new IoEventFd(vm, loop, spec, std::move(fd)));
    VIREO_TRY(vm.ioeventfd(io->m_fd.get(), spec.addr, spec.len, spec.pio, spec.datamatch));
    io->m_registered = true;
    int raw = io->m_fd.get();
    IoEventFd* self = io.get();
    VIREO_ASSIGN_OR_RETURN(io->m_token,
                           loop.add(raw, EPOLLIN, [raw, self, fn = std::move(on_signal)](uint32_t) {
                               uint64_t count;
                               if (::read(raw, &count, sizeof count) != sizeof count) return;
                               self->m_signals += count;
                               fn();
                           }));
    return io;
}

IoEventFd::~IoEventFd() {
    if (m_token != 0) m_loop.remove(m_token);
    if (m_registered)
        (void)m_vm.ioeventfd_remove(m_fd.get(), m_spec.addr, m_spec.len, m_spec.pio, m_spec.datamatch);
}

}  // namespace vireo::vmm
