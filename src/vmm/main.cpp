// `vireo-vmm`: one virtual machine per process.
#include "vmm/vmm_main.hpp"

int main(int argc, char** argv) {
    return vireo::vmm::vmm_main(argc, argv);
}
