// Maps control API requests (method + path + JSON body) onto a VmController.
#pragma once

#include <nlohmann/json.hpp>

#include "vmm/api/http_message.hpp"
#include "vmm/api/vm_controller.hpp"

namespace vireo::vmm::api {

// Routes under /api/v1. Unknown paths get 404, a known path with the wrong method 405 with
// an Allow header, a body that is not the expected JSON 400, an operation the VM's state
// does not allow 409. Successful operations answer 200 with a JSON body.
class ApiRouter {
  public:
    explicit ApiRouter(VmController& controller) : m_controller(controller) {}

    HttpResponse handle(const HttpRequest& request);

  private:
    VmController& m_controller;
};

nlohmann::json to_json(const VmInfo& info);
nlohmann::json to_json(const VmCounters& counters);
nlohmann::json to_json(const SnapshotResult& result);

}  // namespace vireo::vmm::api
